# shellcheck shell=bash
# Shared helpers of the artifact builders (sourced; see build.sh for the environment they get:
# LPMOS_REPO, LPMOS_CACHE, LPMOS_DEBS, LPMOS_INPUT_HASH, LPMOS_BUILD_START, DEP_<NAME>).
set -euo pipefail
shopt -s inherit_errexit

IMAGES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${LPMOS_REPO:-$(cd "$IMAGES_DIR/../.." && pwd)}
DEBS=${LPMOS_DEBS:?run through scripts/images/build.sh}
export LC_ALL=C SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)}

log() { printf '%s %s: %s\n' "$(date +%H:%M:%S)" "${BUILDER_NAME:-build}" "$*" >&2; }
die() { log "$*"; exit 1; }

packages() { # NAME -> the package names of scripts/images/NAME.packages
    sed -e 's/#.*//' "$IMAGES_DIR/$1.packages" | tr -s ' \t' '\n' | sed '/^$/d'
}

# The host's apt sources (mmdebstrap otherwise uses its own built-in mirror): every enabled
# sources.list / *.list / *.sources file, or the files in $LPMOS_APT_SOURCES.
host_sources() {
    if [ -n "${LPMOS_APT_SOURCES:-}" ]; then
        printf '%s\n' $LPMOS_APT_SOURCES
        return
    fi
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && grep -qE '^[[:space:]]*(deb|Types:)' "$f" && echo "$f"
    done
    return 0
}

# mmdebstrap TREE VARIANT PACKAGE... : a bookworm tree in directory TREE from the host's apt
# sources, .debs taken from and added to the shared $DEBS cache (hard links, same filesystem).
# Root mode inside a private mount namespace: its /proc, /sys, /dev mounts never show on the
# host and vanish with the namespace. Extra mmdebstrap options in the MMDEBSTRAP_OPTS array.
mmdebstrap_tree() {
    local tree=$1 variant=$2
    shift 2
    local srcs=() s
    while read -r s; do srcs+=("$s"); done < <(host_sources)
    [ ${#srcs[@]} -gt 0 ] || die "no apt sources found on this host (set LPMOS_APT_SOURCES)"
    log "mmdebstrap $variant: $# packages, sources ${srcs[*]}"
    local inc
    inc=$(printf '%s,' "$@")
    unshare --mount --propagation private -- mmdebstrap --mode=root --variant="$variant" \
        --architectures=amd64 --format=directory \
        --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
        --aptopt='APT::Install-Recommends "false"' \
        --skip=download/empty --skip=essential/unlink \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
        --setup-hook="find '$DEBS' -maxdepth 1 -name '*.deb' -exec ln -f -t \"\$1/var/cache/apt/archives/\" {} +" \
        --customize-hook="find \"\$1/var/cache/apt/archives\" -maxdepth 1 -name '*.deb' -exec ln -f -t '$DEBS/' {} +" \
        "${MMDEBSTRAP_OPTS[@]}" \
        --include="${inc%,}" bookworm "$tree" "${srcs[@]}" >&2
}
MMDEBSTRAP_OPTS=()

# fetch_deb PACKAGE -> path of its .deb in $DEBS (downloaded once; nothing is installed)
fetch_deb() {
    local ver arch file
    ver=$(apt-cache policy "$1" | sed -n 's/^ *Candidate: //p')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no $1 (apt-get update?)"
    arch=$(apt-cache show --no-all-versions "$1" | sed -n 's/^Architecture: //p' | head -n 1)
    file=${1}_${ver//:/%3a}_${arch}.deb   # the name apt-get download gives it
    if [ ! -s "$DEBS/$file" ]; then
        log "downloading $1 $ver"
        (cd "$DEBS" && apt-get -q -o APT::Sandbox::User=root download "$1=$ver" > /dev/null)
    fi
    [ -s "$DEBS/$file" ] || die "download of $1 did not produce $file"
    echo "$DEBS/$file"
}

# The linux-image-<version>-amd64 package linux-image-amd64 depends on
kernel_package() {
    apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' |
        head -n 1
}

# kernel_extract DIR -> the kernel package unpacked into DIR (boot/vmlinuz-*, lib/modules/*,
# modules.dep generated inside DIR only); prints the kernel version
kernel_extract() {
    local pkg deb
    pkg=$(kernel_package)
    [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
    deb=$(fetch_deb "$pkg")
    dpkg-deb -x "$deb" "$1"
    local ver
    ver=$(basename "$(ls -d "$1"/lib/modules/*)")
    depmod -b "$1" "$ver"
    echo "$ver"
}

# copy_modules KROOT KVER DEST MODULE... : the modules and everything they depend on (as
# modprobe resolves it) from the unpacked kernel KROOT into DEST/lib/modules/KVER, then depmod.
# A module that is built in or absent is logged, not fatal.
copy_modules() {
    local kroot=$1 kver=$2 dest=$3 m f
    shift 3
    mkdir -p "$dest/lib/modules/$kver"
    for m in "$@"; do
        if ! out=$(modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>&1); then
            log "module $m: not available ($out)"
            continue
        fi
        echo "$out" | sed -n 's/^insmod \([^ ]*\).*/\1/p' | while read -r f; do
            rel=${f#"$kroot"/}
            mkdir -p "$dest/$(dirname "$rel")"
            [ -f "$dest/$rel" ] || cp "$f" "$dest/$rel"
        done
    done
    cp "$kroot/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$dest/lib/modules/$kver/" 2>/dev/null || true
    depmod -b "$dest" "$kver"
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
elapsed() { awk -v a="$LPMOS_BUILD_START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# write_manifest DIR JSON : DIR/manifest.json, atomically (the cache's "complete" marker)
write_manifest() {
    printf '%s\n' "$2" | python3 -c 'import json,sys; json.dump(json.load(sys.stdin), sys.stdout, indent=2, sort_keys=True)' > "$1/.manifest.json.tmp"
    sync -f "$1/.manifest.json.tmp" 2>/dev/null || true
    mv "$1/.manifest.json.tmp" "$1/manifest.json"
}

# file_entry PATH -> {"file": name, "size": n, "sha256": hex} for a manifest
file_entry() {
    printf '{"file":"%s","size":%s,"sha256":"%s"}' "$(basename "$1")" "$(size "$1")" "$(sha256 "$1")"
}

# cpio_newc DIR OUT COMPRESSOR... : DIR as a newc cpio archive (owner root, sorted names),
# piped through the compressor command
cpio_newc() {
    local dir=$1 out=$2
    shift 2
    (cd "$dir" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | "$@" > "$out"
}
