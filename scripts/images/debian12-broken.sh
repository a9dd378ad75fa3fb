#!/bin/bash
# A deliberately broken copy of the debian12 image, for tests of "an image whose bootloader is
# broken": the same disk, but both GRUB images (core.img after the MBR, \EFI\BOOT\BOOTX64.EFI
# on the ESP) are rebuilt with an early config that looks for a root labelled
# `lpmos-missing-root`, which does not exist. GRUB then stops at its own prompt (serial:
# "error: no such device: lpmos-missing-root" then "grub>") and never loads a kernel, with BIOS
# and with UEFI. Derived in seconds from the debian12 artifact: no package is installed.
# lpmos-depends: debian12
# lpmos-inputs: scripts/images/grub.sh
set -euo pipefail
BUILDER_NAME=debian12-broken
. "$(dirname "$0")/lib.sh"
. "$IMAGES_DIR/grub.sh"

OUT=$1
SRC=${DEP_DEBIAN12:?}
W=$OUT/work
mkdir -p "$W"
RAW=$W/debian-12-amd64-broken.raw
lzop -dc "$SRC/debian-12-amd64.raw.lzo" > "$RAW"
printf 'search --no-floppy --label lpmos-missing-root --set=root\nset prefix=($root)/boot/grub\n' \
    > "$W/early.cfg"
grub_images "$W/early.cfg" "$W/core.img" "$W/BOOTX64.EFI"
# the ESP starts at sector 2048 (scripts/images/grub.sh disk_assemble)
MTOOLS_SKIP_CHECK=1 mcopy -o -i "$RAW@@1048576" "$W/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mbr_boot_code "$RAW" "$W/core.img"
lzop -1 -c "$RAW" > "$OUT/debian-12-amd64-broken.raw.lzo"
raw_size=$(size "$RAW")
python3 - "$SRC/manifest.json" "$OUT/.base.json" << 'PY'
import json, sys
m = json.load(open(sys.argv[1]))
keep = ("arch", "boot_modes", "format", "kernel_version", "cloud_init_version", "package_count",
        "partition_table", "root_partition", "root_label", "esp_partition", "min_disk_gb",
        "os", "release")
json.dump({k: m[k] for k in keep if k in m}, open(sys.argv[2], "w"))
PY
base=$(cat "$OUT/.base.json")
rm -f "$OUT/.base.json"
write_manifest "$OUT" "$(python3 - "$base" << PY
import json, sys
m = json.loads(sys.argv[1])
m.update({"name": "debian12-broken", "derived_from": "$SRC",
          "broken": "bootloader: GRUB's early config searches for the missing root label lpmos-missing-root",
          "files": [$(file_entry "$OUT/debian-12-amd64-broken.raw.lzo")],
          "compression": {"debian-12-amd64-broken.raw.lzo": "lzo"},
          "raw_size": $raw_size, "raw_sha256": "$(sha256 "$RAW")",
          "input_hash": "$LPMOS_INPUT_HASH", "build_seconds": $(elapsed)})
print(json.dumps(m))
PY
)"
rm -rf "$W"
