#!/bin/bash
# The Python deploy ramdisk: vmlinuz + initrd.img = base.cpio.<comp> (deploy-ramdisk-base,
# cached by its package list) followed by agent.cpio.gz, a small layer holding /init
# (scripts/images/deploy-init.sh) and the repo's src/regional_client package tree under
# /opt/lpmos/lib (the reference agent: python3 -m regional_client.agent). The kernel unpacks
# concatenated cpio archives in turn; this layer is rebuilt in about a second when the agent
# changes.
# lpmos-depends: deploy-ramdisk-base
# lpmos-inputs: src/regional_client scripts/images/deploy-init.sh
set -euo pipefail
BUILDER_NAME=deploy-ramdisk
. "$(dirname "$0")/lib.sh"

OUT=$1
BASE_DIR=${DEP_DEPLOY_RAMDISK_BASE:?}
L=$OUT/layer
mkdir -p "$L/opt/lpmos/lib"
install -m 755 "$IMAGES_DIR/deploy-init.sh" "$L/init"
(cd "$REPO/src" && find regional_client -name __pycache__ -prune -o -type f ! -name '*.pyc' -print |
    cpio -pdm --quiet "$L/opt/lpmos/lib")
# compiled ahead when the host's Debian python3 is the ramdisk's (checked-hash .pyc: valid
# whatever the files' times); otherwise the ramdisk compiles at import
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["python3_version"])' "$BASE_DIR/manifest.json")
have=$(dpkg-query -W -f='${Version}' python3 2>/dev/null || true)
if [ "$want" = "$have" ] && [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -m compileall -q -j 0 --invalidation-mode checked-hash "$L/opt/lpmos/lib" >&2
else
    log "host python3 ${have:-none} is not the ramdisk's $want: no precompiled agent"
fi
cpio_newc "$L" "$OUT/agent.cpio.gz" gzip -9 -n
rm -rf "$L"

base=$(ls "$BASE_DIR"/base.cpio.*)
ln -f "$BASE_DIR/vmlinuz" "$OUT/vmlinuz" 2>/dev/null || cp "$BASE_DIR/vmlinuz" "$OUT/vmlinuz"
# the base first; an lz4 (legacy format) stream must be the last one, the kernel's lz4 reader
# cannot tell where it ends
case $base in
    *.lz4) cat "$OUT/agent.cpio.gz" "$base" > "$OUT/initrd.img" ;;
    *) cat "$base" "$OUT/agent.cpio.gz" > "$OUT/initrd.img" ;;
esac
kver=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel_version"])' "$BASE_DIR/manifest.json")
write_manifest "$OUT" "$(cat << JSON
{"name": "deploy-ramdisk", "kernel_version": "$kver", "agent": "python3 -m regional_client.agent",
 "files": [$(file_entry "$OUT/vmlinuz"), $(file_entry "$OUT/initrd.img"), $(file_entry "$OUT/agent.cpio.gz")],
 "layers": ["$(basename "$base")", "agent.cpio.gz"], "base": "$BASE_DIR",
 "base_size": $(size "$base"), "agent_layer_size": $(size "$OUT/agent.cpio.gz"),
 "input_hash": "$LPMOS_INPUT_HASH", "build_seconds": $(elapsed)}
JSON
)"
