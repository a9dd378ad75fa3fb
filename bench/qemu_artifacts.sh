#!/bin/sh
# Boot artifacts of the real-PXE end-to-end run (bench/qemu_pxe.py), copied into CACHE_DIR:
#   vmlinuz      the Debian kernel, extracted from the linux-image package (never installed)
#   initrd.img   static busybox + the virtio/e1000 NIC and virtio disk modules + /init + the
#                POSIX-sh agent (src/regional_client/agent/agent.sh)
# A thin wrapper: the artifact is built and cached by `scripts/images/build.sh sh-ramdisk`
# (in ${LPMOS_ARTIFACT_CACHE:-~/.cache/lpmos}, rebuilt only when agent.sh or the builder
# changes; docs/images.md).
# Usage: bench/qemu_artifacts.sh [CACHE_DIR]     (default: $RC_QEMU_CACHE or /tmp/rcq-cache)
set -eu

HERE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${1:-${RC_QEMU_CACHE:-/tmp/rcq-cache}}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
DIR=$("$HERE/scripts/images/build.sh" sh-ramdisk)
for f in vmlinuz initrd.img; do
    cp "$DIR/$f" "$CACHE/$f.tmp"
    mv "$CACHE/$f.tmp" "$CACHE/$f"
done
echo "$CACHE/vmlinuz $(wc -c < "$CACHE/vmlinuz") bytes; $CACHE/initrd.img $(wc -c < "$CACHE/initrd.img") bytes"
