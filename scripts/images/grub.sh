# shellcheck shell=bash
# GRUB for an image file, without grub-install / grub-bios-setup (they probe the host's disks):
# grub-mkimage builds the images, a few lines of Python put boot.img into the MBR.

GRUB_PC_DIR=/usr/lib/grub/i386-pc        # grub-pc-bin
GRUB_EFI_DIR=/usr/lib/grub/x86_64-efi    # grub-efi-amd64-bin
# everything the early config and grub.cfg use is built in: the image carries no GRUB modules
GRUB_COMMON_MODS="part_msdos part_gpt ext2 fat search search_label search_fs_uuid normal
    configfile linux echo serial terminal test sleep halt reboot ls cat"

# grub_images EARLY_CFG CORE_IMG BOOTX64_EFI
grub_images() {
    # shellcheck disable=SC2086
    grub-mkimage -O i386-pc -d "$GRUB_PC_DIR" -c "$1" -p /boot/grub -o "$2" biosdisk $GRUB_COMMON_MODS
    # shellcheck disable=SC2086
    grub-mkimage -O x86_64-efi -d "$GRUB_EFI_DIR" -c "$1" -p /boot/grub -o "$3" \
        efi_gop efi_uga $GRUB_COMMON_MODS
}

# mbr_boot_code DISK CORE_IMG: boot.img's code into the MBR (the partition table and disk
# signature, bytes 440-511, stay) and core.img into the sectors after it, before partition 1.
# boot.img loads core.img's first sector from its kernel_sector field (offset 0x5c, default
# 1); grub-mkimage already filled core.img's own blocklist (the rest of it, from sector 2).
mbr_boot_code() {
    python3 - "$1" "$2" "$GRUB_PC_DIR/boot.img" << 'PY'
import os
import struct
import sys

disk, core, boot = sys.argv[1:4]
boot_img = bytearray(open(boot, "rb").read())
core_img = open(core, "rb").read()
assert len(boot_img) == 512
with open(disk, "r+b") as f:
    mbr = bytearray(f.read(512))
    assert mbr[510:512] == b"\x55\xaa", "no MBR partition table"
    first = min(struct.unpack_from("<I", mbr, 446 + 16 * i + 8)[0] for i in range(4)
                if mbr[446 + 16 * i + 4])
    if len(core_img) > (first - 1) * 512:
        sys.exit(f"core.img ({len(core_img)} bytes) does not fit before sector {first}")
    struct.pack_into("<Q", boot_img, 0x5C, 1)      # core.img starts at sector 1
    boot_img[0x66:0x68] = b"\x90\x90"             # as grub-bios-setup does for a hard disk
    mbr[0:440] = boot_img[0:440]
    f.seek(0)
    f.write(mbr)
    f.seek(512)
    f.write(core_img)
    os.fsync(f.fileno())
PY
}

# disk_assemble RAW ESP_IMG ROOT_IMG CORE_IMG: MBR disk file = [1 MiB gap][ESP][root]
disk_assemble() {
    local raw=$1 esp=$2 root=$3 core=$4
    local esp_s root_s
    esp_s=$(( $(stat -c %s "$esp") / 512 ))
    root_s=$(( $(stat -c %s "$root") / 512 ))
    rm -f "$raw"
    truncate -s $(( (2048 + esp_s + root_s) * 512 )) "$raw"
    printf 'label: dos\nunit: sectors\n\n1 : start=2048, size=%s, type=ef\n2 : start=%s, size=%s, type=83, bootable\n' \
        "$esp_s" $((2048 + esp_s)) "$root_s" | sfdisk --quiet --no-reread --no-tell-kernel "$raw" >&2
    dd if="$esp" of="$raw" bs=4M seek=$((2048 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
    dd if="$root" of="$raw" bs=4M seek=$(( (2048 + esp_s) * 512 )) oflag=seek_bytes \
        conv=notrunc,sparse status=none
    mbr_boot_code "$raw" "$core"
}
