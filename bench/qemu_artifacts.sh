#!/bin/sh
# Build the boot artifacts of the real-PXE end-to-end run (bench/qemu_pxe.py) into a cache dir:
#   vmlinuz      the Debian kernel, extracted from the linux-image package (never installed)
#   busybox      the static busybox from the busybox-static package (never installed)
#   initrd.img   that busybox + the virtio/e1000 NIC modules + /init + the POSIX-sh agent
#                (src/regional_client/agent/agent.sh)
# Usage: bench/qemu_artifacts.sh [CACHE_DIR]     (default: $RC_QEMU_CACHE or /tmp/rcq-cache)
# Needs: apt-get (download only), dpkg-deb, xz, gzip.
# The kernel is fetched once; the initrd is rebuilt every run (cheap: it carries the agent).
set -eu

HERE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${1:-${RC_QEMU_CACHE:-/tmp/rcq-cache}}
AGENT=$HERE/src/regional_client/agent/agent.sh
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net e1000"
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

# ---- kernel: the linux-image-<version>-amd64 package linux-image-amd64 depends on ----------
if [ ! -s "$CACHE/vmlinuz" ] || [ ! -d "$CACHE/modules" ]; then
    pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
    [ -n "$pkg" ] || { echo "cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
    echo "downloading $pkg" >&2
    rm -rf "$CACHE/dl" "$CACHE/kernel"
    mkdir -p "$CACHE/dl"
    (cd "$CACHE/dl" && apt-get -o APT::Sandbox::User=root download "$pkg" > /dev/null)
    dpkg-deb -x "$CACHE"/dl/*.deb "$CACHE/kernel"
    cp "$CACHE"/kernel/boot/vmlinuz-* "$CACHE/vmlinuz"
    # keep only the NIC modules the ramdisk needs (the whole tree is ~400 MB)
    mkdir -p "$CACHE/modules"
    for m in $MODULES; do
        f=$(find "$CACHE/kernel/lib/modules" -name "$m.ko*" | head -n 1)
        if [ -z "$f" ]; then
            echo "module $m not found (built in?)" >&2
            continue
        fi
        case $f in
            *.xz) xz -dc "$f" > "$CACHE/modules/$m.ko" ;;
            *.zst) zstd -dqc "$f" > "$CACHE/modules/$m.ko" ;;
            *) cp "$f" "$CACHE/modules/$m.ko" ;;
        esac
    done
    rm -rf "$CACHE/dl" "$CACHE/kernel"
fi

# ---- initrd --------------------------------------------------------------------------------
# ---- busybox-static: downloaded and extracted too (it conflicts with the `busybox` package
# other tests install, so it is never installed) ----------------------------------------------
if [ ! -x "$CACHE/busybox" ]; then
    rm -rf "$CACHE/dl" "$CACHE/bb"
    mkdir -p "$CACHE/dl"
    (cd "$CACHE/dl" && apt-get -o APT::Sandbox::User=root download busybox-static > /dev/null)
    dpkg-deb -x "$CACHE"/dl/busybox-static_*.deb "$CACHE/bb"
    [ -x "$CACHE/bb/bin/busybox" ] || { echo "no bin/busybox in busybox-static" >&2; exit 1; }
    cp "$CACHE/bb/bin/busybox" "$CACHE/busybox"
    rm -rf "$CACHE/dl" "$CACHE/bb"
fi
ROOT=$CACHE/initrd-root
rm -rf "$ROOT"
mkdir -p "$ROOT/bin" "$ROOT/sbin" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/tmp" \
    "$ROOT/lib/modules" "$ROOT/etc" "$ROOT/usr/share/udhcpc" "$ROOT/usr/bin" "$ROOT/usr/sbin"
cp "$CACHE/busybox" "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"
cp "$CACHE"/modules/*.ko "$ROOT/lib/modules/"
cp "$AGENT" "$ROOT/bin/lpmos-agent"
chmod 755 "$ROOT/bin/lpmos-agent"

cat > "$ROOT/usr/share/udhcpc/default.script" << 'EOF'
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
EOF
chmod 755 "$ROOT/usr/share/udhcpc/default.script"

cat > "$ROOT/init" << 'EOF'
#!/bin/sh
# LPMOS test ramdisk: NIC modules, DHCP with udhcpc, then the sh agent (reads /proc/cmdline).
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "lpmos-init: kernel up after $(cut -d' ' -f1 /proc/uptime)s"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net e1000; do
    [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
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
EOF
chmod 755 "$ROOT/init"

(cd "$ROOT" && find . | "$CACHE/busybox" cpio -o -H newc 2> /dev/null | gzip -1) > "$CACHE/initrd.img.tmp"
mv "$CACHE/initrd.img.tmp" "$CACHE/initrd.img"
rm -rf "$ROOT"
echo "$CACHE/vmlinuz $(wc -c < "$CACHE/vmlinuz") bytes; $CACHE/initrd.img $(wc -c < "$CACHE/initrd.img") bytes"
