#!/bin/sh
# /init of the LPMOS Python deploy ramdisk (scripts/images/deploy-ramdisk.sh).
# Mounts, loads the drivers the hardware asks for, DHCP on every NIC (the boot NIC first: the
# one whose MAC is in BOOTIF= if given, else the first with link), then runs the reference agent
# (python3 -m regional_client.agent, which reads regional_url, sn... from
# /proc/cmdline) and powers off when it exits (the agent itself reboots after `reboot`).
# Kernel parameters of its own: lpmos_shell=1 (a shell on the console instead of powering off).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/opt/busybox
export HOME=/root TERM=${TERM:-linux} PYTHONPATH=/opt/lpmos/lib PYTHONDONTWRITEBYTECODE=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
say() { echo "lpmos-init: $* (uptime $(cut -d' ' -f1 /proc/uptime)s)" > /dev/console; }
say "kernel up"
CMDLINE=$(cat /proc/cmdline)
ip link set lo up

# coldplug: modprobe every modalias until no new device shows (virtio_pci brings virtio devices,
# an HBA brings its disks...)
seen=
for pass in 1 2 3 4; do
    aliases=$(cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u)
    [ "$aliases" = "$seen" ] && break
    seen=$aliases
    echo "$aliases" | xargs -r modprobe -q -a -b 2>/dev/null
done
for m in ext4 vfat nls_cp437 nls_iso8859_1 iso9660 sd_mod sr_mod efivarfs; do modprobe -q "$m"; done
[ -d /sys/firmware/efi/efivars ] && mount -t efivarfs efivarfs /sys/firmware/efi/efivars
(modprobe -q ipmi_si && modprobe -q ipmi_devintf) &
say "drivers loaded: $(cut -d' ' -f1 /proc/modules | wc -l) modules"

# ---- network ---------------------------------------------------------------------------------
cat > /run/udhcpc.script << 'SCRIPT'
#!/bin/sh
case $1 in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound | renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        if [ -n "${router:-}" ] && ! ip route show default | grep -q .; then
            ip route add default via "${router%% *}" dev "$interface"
        fi
        [ -n "${dns:-}" ] && for d in $dns; do echo "nameserver $d"; done > /etc/resolv.conf
        echo "lpmos-init: $interface has $ip/${mask:-24}" > /dev/console
        ;;
esac
exit 0
SCRIPT
chmod 755 /run/udhcpc.script
bootif=
for w in $CMDLINE; do
    case $w in BOOTIF=*) bootif=$(echo "${w#BOOTIF=}" | sed 's/^01-//' | tr 'A-F-' 'a-f:') ;; esac
done
nics=
for i in $(seq 1 40); do
    nics=$(for d in /sys/class/net/*; do [ -e "$d/device" ] && echo "${d##*/}"; done)
    [ -n "$nics" ] && break
    sleep 0.25
done
for n in $nics; do ip link set "$n" up; done
boot=
if [ -n "$bootif" ]; then
    for n in $nics; do [ "$(cat /sys/class/net/$n/address)" = "$bootif" ] && boot=$n; done
fi
if [ -z "$boot" ]; then # the first NIC with link (give links up to 5 s)
    for i in $(seq 1 20); do
        for n in $nics; do
            [ "$(cat /sys/class/net/$n/carrier 2>/dev/null)" = 1 ] && { boot=$n; break; }
        done
        [ -n "$boot" ] && break
        sleep 0.25
    done
fi
[ -n "$boot" ] || boot=$(echo "$nics" | head -n 1)
say "NICs: $(echo $nics); boot NIC ${boot:-none}"
for n in $nics; do
    [ "$n" = "$boot" ] && continue
    busybox udhcpc -i "$n" -b -t 5 -T 2 -s /run/udhcpc.script -p "/run/udhcpc.$n.pid" \
        > /dev/null 2>&1 &
done
if [ -n "$boot" ]; then
    busybox udhcpc -i "$boot" -b -t 20 -T 1 -s /run/udhcpc.script -p "/run/udhcpc.$boot.pid" ||
        say "no DHCP lease on $boot"
fi

tools=
for t in python3 lsblk sgdisk sfdisk parted mkfs.ext4 mkfs.vfat efibootmgr lzop xz zstd fio \
    stress-ng memtester smartctl nvme hdparm lspci dmidecode lshw ipmitool udhcpc; do
    command -v "$t" > /dev/null && tools="$tools $t" || tools="$tools !$t"
done
say "tools:$tools"
say "starting the agent"
cd /
python3 -m regional_client.agent
rc=$?
say "agent exited with $rc"
sync
case " $CMDLINE " in
    *" lpmos_shell=1 "*) setsid -c /bin/sh -l < /dev/console > /dev/console 2>&1 ;;
esac
poweroff -f
