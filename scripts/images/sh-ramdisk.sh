#!/bin/bash
# The busybox deploy ramdisk of the POSIX-sh agent (src/regional_client/agent/agent.sh), used by
# the real-PXE end-to-end run (bench/qemu_pxe.py through bench/qemu_artifacts.sh):
#   vmlinuz     the Debian kernel (linux-image-<version>-amd64: apt-get download + dpkg-deb -x)
#   initrd.img  static busybox (busybox-static, extracted the same way: installing it would
#               remove the `busybox` package other tests need; its applets include gunzip,
#               unxz, lzop, wget, dd, fdisk, blockdev), the virtio/e1000 NIC and virtio_blk disk
#               modules (insmod-ed in dependency order), a udhcpc script, /init, the agent
# lpmos-inputs: src/regional_client/agent/agent.sh
set -euo pipefail
BUILDER_NAME=sh-ramdisk
. "$(dirname "$0")/lib.sh"

OUT=$1
W=$OUT/work
ROOT=$W/root
mkdir -p "$W/kernel" "$W/bb"
MODULES="virtio_pci virtio_net e1000 virtio_blk"

KVER=$(kernel_extract "$W/kernel")
cp "$W/kernel/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
dpkg-deb -x "$(fetch_deb busybox-static)" "$W/bb"
[ -x "$W/bb/bin/busybox" ] || die "no bin/busybox in busybox-static"

mkdir -p "$ROOT"/{bin,sbin,proc,sys,dev,tmp,etc,lib/modules,usr/share/udhcpc,usr/bin,usr/sbin}
cp "$W/bb/bin/busybox" "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"
install -m 755 "$REPO/src/regional_client/agent/agent.sh" "$ROOT/bin/lpmos-agent"
# the modules and their dependencies, flat, with the order to insmod them in (load.order)
: > "$ROOT/lib/modules/load.order"
for m in $MODULES; do
    deps=$(modprobe -d "$W/kernel" -S "$KVER" --show-depends "$m" 2>/dev/null |
        sed -n 's/^insmod \([^ ]*\).*/\1/p') || { log "module $m not available"; continue; }
    for f in $deps; do
        n=$(basename "$f")
        n=${n%%.ko*}.ko
        grep -qx "$n" "$ROOT/lib/modules/load.order" && continue
        case $f in
            *.xz) xz -dc "$f" > "$ROOT/lib/modules/$n" ;;
            *.zst) zstd -dqc "$f" > "$ROOT/lib/modules/$n" ;;
            *) cp "$f" "$ROOT/lib/modules/$n" ;;
        esac
        echo "$n" >> "$ROOT/lib/modules/load.order"
    done
done
log "modules: $(tr '\n' ' ' < "$ROOT/lib/modules/load.order")"

cat > "$ROOT/usr/share/udhcpc/default.script" << 'SCRIPT'
#!/bin/sh
case $1 in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound | renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "${router:-}" ] && ip route add default via "${router%% *}" dev "$interface"
        echo "lpmos-init: $interface has $ip/${mask:-24}"
        ;;
esac
exit 0
SCRIPT
chmod 755 "$ROOT/usr/share/udhcpc/default.script"

cat > "$ROOT/init" << 'INIT'
#!/bin/sh
# LPMOS busybox ramdisk: modules (NIC + virtio disk), DHCP with udhcpc, then the sh agent
# (reads /proc/cmdline).
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "lpmos-init: kernel up after $(cut -d' ' -f1 /proc/uptime)s"
while read -r m; do
    insmod "/lib/modules/$m" 2>/dev/null
done < /lib/modules/load.order
ip link set lo up
nic=
for i in 1 2 3 4 5 6 7 8 9 10; do
    for d in /sys/class/net/*; do
        n=${d##*/}
        [ "$n" = lo ] || { nic=$n; break; }
    done
    [ -n "$nic" ] && break
    sleep 0.5
done
[ -n "$nic" ] || { echo "lpmos-init: no NIC"; poweroff -f; }
ip link set "$nic" up
echo "lpmos-init: udhcpc on $nic"
udhcpc -i "$nic" -n -q -t 20 -T 1 -s /usr/share/udhcpc/default.script || { echo "lpmos-init: no DHCP lease"; poweroff -f; }
echo "lpmos-init: starting agent after $(cut -d' ' -f1 /proc/uptime)s"
AGENT_IDLE=2 AGENT_BACKOFF_MAX=4 lpmos-agent /proc/cmdline
echo "lpmos-init: agent exited with $?"
sync
poweroff -f
INIT
chmod 755 "$ROOT/init"

(cd "$ROOT" && find . | LC_ALL=C sort | "$ROOT/bin/busybox" cpio -o -H newc 2> /dev/null | gzip -1 -n) \
    > "$OUT/initrd.img"
write_manifest "$OUT" "$(cat << JSON
{"name": "sh-ramdisk", "kernel_version": "$KVER", "agent": "agent.sh (busybox ash)",
 "modules": "$(tr '\n' ' ' < "$ROOT/lib/modules/load.order" | sed 's/ $//')",
 "files": [$(file_entry "$OUT/vmlinuz"), $(file_entry "$OUT/initrd.img")],
 "input_hash": "$LPMOS_INPUT_HASH", "build_seconds": $(elapsed)}
JSON
)"
rm -rf "$W"
