#!/bin/bash
# Base layer of the Python deploy ramdisk: the Debian kernel (vmlinuz, from the
# linux-image-<version>-amd64 package: apt-get download + dpkg-deb -x, nothing installed) and
# base.cpio.<comp>, a newc archive of a trimmed Debian userland (mmdebstrap --variant=essential
# + deploy-ramdisk-base.packages, in a private mount namespace) plus the kernel modules a
# server or a QEMU VM needs to see its disks and NICs (with modules.dep: modprobe works).
# No /init: the agent layer (deploy-ramdisk.sh) brings it. Cached apart from the agent layer.
#
# LPMOS_RAMDISK_COMP: gzip | zstd | lz4 | xz (default below; docs/images.md has the timings)
# lpmos-env: LPMOS_RAMDISK_COMP
set -euo pipefail
BUILDER_NAME=deploy-ramdisk-base
. "$(dirname "$0")/lib.sh"

COMP=${LPMOS_RAMDISK_COMP:-lz4}
OUT=$1
W=$OUT/work
TREE=$W/tree
mkdir -p "$W"

# storage (QEMU: virtio, AHCI, NVMe; servers: SATA/SAS HBAs, RAID, USB virtual media), NICs,
# filesystems, EFI variables, IPMI (in-band BMC queries)
MODULES="virtio_pci virtio_net virtio_blk virtio_scsi virtio_console virtio_rng
    ahci ata_piix sd_mod sr_mod sg nvme libata mpt3sas megaraid_sas smartpqi hpsa aacraid
    usb_storage uas xhci_pci ehci_pci
    e1000 e1000e igb igc ixgbe ixgbevf i40e iavf ice bnxt_en mlx4_en mlx5_core tg3 bnx2 bnx2x
    r8169 be2net qede vmxnet3 atlantic
    ext4 vfat nls_cp437 nls_iso8859_1 nls_utf8 iso9660 xfs btrfs crc32c_generic crc32c_intel
    efivarfs ipmi_devintf ipmi_si dm_mod md_mod raid1 loop"
EXCLUDES=('/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*'
    '/usr/share/lintian/*' '/usr/share/groff/*')
MMDEBSTRAP_OPTS=()
for e in "${EXCLUDES[@]}"; do MMDEBSTRAP_OPTS+=(--dpkgopt="path-exclude=$e"); done
# shellcheck disable=SC2046
mmdebstrap_tree "$TREE" essential $(packages deploy-ramdisk-base)

# ---- trim: nothing here is ever upgraded or reconfigured ------------------------------------
PY=$(cd "$TREE/usr/lib" && ls -d python3.[0-9]* | head -n 1)
rm -rf "$TREE"/var/cache/* "$TREE"/var/lib/apt "$TREE"/var/log/* "$TREE"/usr/share/zoneinfo \
    "$TREE"/usr/share/perl5 "$TREE"/usr/share/perl "$TREE"/usr/lib/x86_64-linux-gnu/perl* \
    "$TREE"/usr/lib/x86_64-linux-gnu/libperl.so* "$TREE"/usr/bin/perl* "$TREE"/usr/share/X11 \
    "$TREE"/usr/lib/x86_64-linux-gnu/gconv "$TREE"/usr/share/i18n "$TREE"/usr/share/common-licenses \
    "$TREE"/usr/share/bash-completion "$TREE"/usr/share/misc/pci.ids.gz \
    "$TREE"/usr/lib/"$PY"/{test,idlelib,tkinter,turtledemo,lib2to3,pydoc_data,ensurepip} \
    "$TREE"/usr/lib/"$PY"/config-*-x86_64-linux-gnu "$TREE"/usr/lib/"$PY"/unittest/test \
    "$TREE"/usr/lib/python3/dist-packages/{pygments,rich,click}
# __pycache__ stays (the .pyc Debian's postinsts compiled): without it every boot compiles
# the stdlib, httpx and asyncio from source (slow under emulation; the .pyc cost ~14 MB unpacked)
pkgs=$(dpkg-query --admindir="$TREE/var/lib/dpkg" -W -f='${db:Status-Abbrev}\n' | grep -c '^ii')
python=$(dpkg-query --admindir="$TREE/var/lib/dpkg" -W -f='${Version}' python3)
httpx=$(dpkg-query --admindir="$TREE/var/lib/dpkg" -W -f='${Version}' python3-httpx)
dpkg-query --admindir="$TREE/var/lib/dpkg" -W -f='${Package} ${Version}\n' > "$OUT/packages.txt"
rm -rf "$TREE/var/lib/dpkg/info"
find "$TREE/usr/lib/python3/dist-packages" -depth -type d -name tests -exec rm -rf {} +

# ---- kernel + modules -----------------------------------------------------------------------
KROOT=$W/kernel
mkdir -p "$KROOT"
KVER=$(kernel_extract "$KROOT")
cp "$KROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
# shellcheck disable=SC2086
copy_modules "$KROOT" "$KVER" "$TREE" $MODULES
rm -rf "$KROOT"
nmods=$(find "$TREE/lib/modules/$KVER" -name '*.ko*' | wc -l)
log "kernel $KVER, $nmods modules, tree $(du -sm "$TREE" | cut -f1) MiB"

# busybox applets for whatever Debian does not provide here (udhcpc, poweroff, ...), last in PATH
mkdir -p "$TREE/opt/busybox"
chroot_free_bb=$TREE/bin/busybox
[ -x "$chroot_free_bb" ] || die "no busybox in the tree"
for a in $("$chroot_free_bb" --list); do ln -sf /bin/busybox "$TREE/opt/busybox/$a"; done
mkdir -p "$TREE"/{proc,sys,dev,run,tmp,mnt,root}

case $COMP in
    gzip) compress=(gzip -6 -n) ;;
    zstd) compress=(zstd -q -10 -T0) ;;
    lz4) compress=(lz4 -l -9 -q) ;;   # the kernel reads only the legacy lz4 format
    xz) compress=(xz --check=crc32 -6 -T0) ;;
    *) die "unknown LPMOS_RAMDISK_COMP $COMP" ;;
esac
BASE=$OUT/base.cpio.$COMP
cpio_newc "$TREE" "$BASE" "${compress[@]}"
unpacked=$(du -sb "$TREE" | cut -f1)
write_manifest "$OUT" "$(cat << JSON
{"name": "deploy-ramdisk-base", "kernel_version": "$KVER", "compression": "$COMP",
 "files": [$(file_entry "$OUT/vmlinuz"), $(file_entry "$BASE")],
 "unpacked_bytes": $unpacked, "package_count": $pkgs, "module_count": $nmods,
 "python3_version": "$python", "httpx_version": "$httpx",
 "input_hash": "$LPMOS_INPUT_HASH", "build_seconds": $(elapsed)}
JSON
)"
rm -rf "$W"
