#!/bin/bash
# Debian 12 (bookworm) amd64 disk image, bootable by BIOS and UEFI from one MBR disk.
# Built by scripts/images/build.sh debian12 (which hands it OUTDIR and the cache environment).
#
#   partition 1  ESP, FAT32 "ESP", 40 MiB: \EFI\BOOT\BOOTX64.EFI (grub-mkimage x86_64-efi)
#   partition 2  ext4 "rootfs", the last partition (cloud-init growpart grows it at first boot)
#   MBR + the gap before partition 1: GRUB boot.img + core.img (grub-mkimage i386-pc)
#
# Both GRUB images carry an early config that finds the root by its label and reads
# /boot/grub/grub.cfg there (static, written here: /vmlinuz and /initrd.img are the symlinks
# the kernel package maintains). No loop device, no mount: mmdebstrap into a directory (in a
# private mount namespace), mkfs.ext4 -d, mkfs.vfat + mtools, sfdisk and dd on the image file.
# grub-install / grub-bios-setup are never run (they probe the host's disks).
#
# Output in OUTDIR: debian-12-amd64.raw.lzo (lzop -1), debian-12-amd64.raw.gz (gzip -6),
# manifest.json.
# lpmos-inputs: scripts/images/grub.sh
set -euo pipefail
BUILDER_NAME=debian12
. "$(dirname "$0")/lib.sh"
. "$IMAGES_DIR/grub.sh"

OUT=$1
W=$OUT/work
mkdir -p "$W"
TREE=$W/tree

# ---- the root tree --------------------------------------------------------------------------
# trimmed at unpack time: docs, man pages, locales; kernel modules no server boot needs
# (quoted: dpkg matches them, not the shell)
EXCLUDES=(
    '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*' '/usr/share/lintian/*'
    '/usr/share/groff/*'
    '/lib/modules/*/kernel/sound/*' '/lib/modules/*/kernel/drivers/media/*'
    '/lib/modules/*/kernel/drivers/gpu/*' '/lib/modules/*/kernel/drivers/net/wireless/*'
    '/lib/modules/*/kernel/net/wireless/*' '/lib/modules/*/kernel/net/mac80211/*'
    '/lib/modules/*/kernel/drivers/bluetooth/*' '/lib/modules/*/kernel/net/bluetooth/*'
    '/lib/modules/*/kernel/drivers/staging/*' '/lib/modules/*/kernel/drivers/iio/*'
    '/lib/modules/*/kernel/drivers/isdn/*' '/lib/modules/*/kernel/drivers/input/joystick/*'
    '/lib/modules/*/kernel/drivers/input/touchscreen/*' '/lib/modules/*/kernel/drivers/input/tablet/*'
    '/lib/modules/*/kernel/drivers/net/can/*' '/lib/modules/*/kernel/drivers/net/usb/*'
    '/lib/modules/*/kernel/drivers/usb/gadget/*' '/lib/modules/*/kernel/drivers/nfc/*'
    '/lib/modules/*/kernel/drivers/net/wwan/*' '/lib/modules/*/kernel/drivers/comedi/*'
)
MMDEBSTRAP_OPTS=(
    # initramfs: a generic one (all storage/NIC drivers), zstd; root by label
    --setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && printf "MODULES=most\nCOMPRESS=zstd\n" > "$1/etc/initramfs-tools/conf.d/lpmos.conf"'
)
for e in "${EXCLUDES[@]}"; do MMDEBSTRAP_OPTS+=(--dpkgopt="path-exclude=$e"); done
# includes after the excludes: dpkg applies the filters in order
MMDEBSTRAP_OPTS+=(--dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-include=/usr/share/locale/locale.alias')
# shellcheck disable=SC2046
mmdebstrap_tree "$TREE" minbase $(packages debian12)

KVER=$(basename "$(ls -d "$TREE"/lib/modules/*)")
[ -e "$TREE/vmlinuz" ] || ln -s "boot/vmlinuz-$KVER" "$TREE/vmlinuz"
[ -e "$TREE/initrd.img" ] || ln -s "boot/initrd.img-$KVER" "$TREE/initrd.img"
[ -s "$TREE/boot/initrd.img-$KVER" ] || die "no initrd.img-$KVER was generated"

# ---- configuration --------------------------------------------------------------------------
cat > "$TREE/etc/fstab" << 'FSTAB'
# <file system> <mount point> <type> <options> <dump> <pass>
LABEL=rootfs  /          ext4  errors=remount-ro  0  1
LABEL=ESP     /boot/efi  vfat  umask=0077,nofail  0  2
FSTAB
mkdir -p "$TREE/boot/efi"
cat > "$TREE/etc/cloud/cloud.cfg.d/90_lpmos.cfg" << 'CC'
# LPMOS image defaults (user-data may override them)
datasource_list: [ NoCloud, ConfigDrive, None ]
# RSA/DSA host keys are slow to generate (minutes under emulation) and not needed
ssh_genkeytypes: [ed25519, ecdsa]
# the image has no locales package: do not try to generate one
locale: false
growpart:
  mode: auto
  devices: ['/']
resize_rootfs: true
CC
cat > "$TREE/etc/network/interfaces" << 'ENI'
# interfaces(5): cloud-init renders the machine's network into interfaces.d
auto lo
iface lo inet loopback
source /etc/network/interfaces.d/*
ENI
mkdir -p "$TREE/etc/network/interfaces.d"
# every machine gets its own identity at first boot
rm -f "$TREE"/etc/ssh/ssh_host_*
: > "$TREE/etc/machine-id"
rm -f "$TREE/var/lib/dbus/machine-id" "$TREE/etc/hostname"
ln -sf /etc/machine-id "$TREE/var/lib/dbus/machine-id"
rm -f "$TREE/etc/resolv.conf"
: > "$TREE/etc/resolv.conf"
# trims the excludes could not express
rm -rf "$TREE"/var/cache/apt/*.bin "$TREE"/var/lib/apt/lists/* "$TREE"/var/log/*.log \
    "$TREE"/var/cache/debconf/*-old "$TREE"/var/lib/dpkg/*-old "$TREE"/tmp/* \
    "$TREE"/var/cache/man
find "$TREE/usr/lib/python3" -depth -type d -name tests -path '*/dist-packages/*' -exec rm -rf {} +

mkdir -p "$TREE/boot/grub"
cat > "$TREE/boot/grub/grub.cfg" << GRUBCFG
# Static GRUB config of the LPMOS Debian 12 image (no grub package in the image: the
# bootloaders were built by scripts/images/debian12.sh). /vmlinuz and /initrd.img are the
# kernel package's symlinks, so kernel upgrades keep booting.
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry "Debian GNU/Linux 12" {
    search --no-floppy --label rootfs --set=root
    linux /vmlinuz console=tty0 console=ttyS0,115200 root=LABEL=rootfs ro
    initrd /initrd.img
}
GRUBCFG

# ---- filesystems ----------------------------------------------------------------------------
used_kb=$(du -sk --apparent-size "$TREE" | cut -f1)
files=$(find "$TREE" | wc -l)
# room for metadata + journal + ~200 MiB free for the first boot (before growpart)
root_mb=$(( (used_kb * 115 / 100) / 1024 + 256 ))
log "root tree: $((used_kb / 1024)) MiB, $files files -> ext4 of $root_mb MiB"
ROOTIMG=$W/root.ext4
rm -f "$ROOTIMG"
mkfs.ext4 -q -F -L rootfs -d "$TREE" -O ^orphan_file,^metadata_csum_seed -E lazy_itable_init=0 \
    -U random "$ROOTIMG" "${root_mb}M" >&2

ESP_MB=40
ESPIMG=$W/esp.img
EARLY=$W/early.cfg
printf 'search --no-floppy --label rootfs --set=root\nset prefix=($root)/boot/grub\n' > "$EARLY"
grub_images "$EARLY" "$W/core.img" "$W/BOOTX64.EFI"
rm -f "$ESPIMG"
mkfs.vfat -C -F 32 -s 1 -n ESP "$ESPIMG" $((ESP_MB * 1024)) > /dev/null
mmd -i "$ESPIMG" ::/EFI ::/EFI/BOOT
mcopy -i "$ESPIMG" "$W/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

# ---- the disk -------------------------------------------------------------------------------
RAW=$W/debian-12-amd64.raw
disk_assemble "$RAW" "$ESPIMG" "$ROOTIMG" "$W/core.img"
raw_size=$(size "$RAW")

# ---- compress (both at once: two cores) -----------------------------------------------------
log "compressing $((raw_size / 1048576)) MiB"
lzop -1 -c "$RAW" > "$OUT/debian-12-amd64.raw.lzo" &
lzo_pid=$!
gzip -6 -n -c "$RAW" > "$OUT/debian-12-amd64.raw.gz"
wait "$lzo_pid"

cloud_init=$(dpkg-query --admindir="$TREE/var/lib/dpkg" -W -f='${Version}' cloud-init)
pkgs=$(dpkg-query --admindir="$TREE/var/lib/dpkg" -W -f='${db:Status-Abbrev}\n' | grep -c '^ii')
min_gb=$(( (raw_size + 512 * 1048576 + 1073741823) / 1073741824 ))
write_manifest "$OUT" "$(cat << JSON
{"name": "debian12", "os": "debian", "release": "12", "arch": "amd64", "format": "raw",
 "files": [$(file_entry "$OUT/debian-12-amd64.raw.lzo"), $(file_entry "$OUT/debian-12-amd64.raw.gz")],
 "compression": {"debian-12-amd64.raw.lzo": "lzo", "debian-12-amd64.raw.gz": "gzip"},
 "raw_size": $raw_size, "raw_sha256": "$(sha256 "$RAW")",
 "boot_modes": ["bios", "uefi"], "partition_table": "mbr", "root_partition": 2,
 "root_label": "rootfs", "esp_partition": 1, "min_disk_gb": $min_gb,
 "kernel_version": "$KVER", "cloud_init_version": "$cloud_init", "package_count": $pkgs,
 "input_hash": "$LPMOS_INPUT_HASH", "build_seconds": $(elapsed)}
JSON
)"
rm -rf "$W"
log "done: $(ls -l "$OUT" | tail -n +2 | awk '{print $5, $9}' | tr '\n' ' ')"
