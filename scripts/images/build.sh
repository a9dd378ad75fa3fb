#!/bin/bash
# Cache front-end for the LPMOS boot/OS artifacts (docs/images.md).
#
#   scripts/images/build.sh NAME [--print-path] [--force]
#
# NAME is one of the builders next to this script (scripts/images/NAME.sh): debian12,
# debian12-broken, deploy-ramdisk-base, deploy-ramdisk, sh-ramdisk.
#
# The artifact lives in ${LPMOS_ARTIFACT_CACHE:-${HOME:-/root}/.cache/lpmos}/NAME-<hash>/ where <hash>
# covers the artifact's inputs: the builder script, lib.sh, NAME.packages (and the candidate
# versions apt would pick for the packages named there), the files the builder declares with
# `# lpmos-inputs:` header lines (e.g. the agent source a ramdisk embeds) and the hashes of the
# artifacts it declares with `# lpmos-depends:` (built first), and the values of the environment
# variables it declares with `# lpmos-env:`. A directory is complete when its
# manifest.json exists (the builder writes it last, atomically); otherwise it is built in a
# temporary directory next to it and renamed into place. Downloaded .debs are kept in
# CACHE/debs (shared by all builds). Only the newest 2 NAME-<hash> directories are kept.
#
# stdout: the artifact directory, one line (always; --print-path is accepted for clarity).
# stderr: the build log. Exit code non-zero when the build failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# Without HOME (test helpers run children with a minimal environment): root's cache.
CACHE=${LPMOS_ARTIFACT_CACHE:-${HOME:-/root}/.cache/lpmos}
KEEP=2

usage() { echo "usage: $0 NAME [--print-path] [--force] [--hash]" >&2; exit 2; }
[ $# -ge 1 ] || usage
NAME=$1
shift
FORCE=0 ONLY_HASH=0
for a in "$@"; do
    case $a in
        --print-path) ;;
        --force) FORCE=1 ;;
        --hash) ONLY_HASH=1 ;;
        *) usage ;;
    esac
done
BUILDER=$HERE/$NAME.sh
[[ $NAME =~ ^[a-z0-9][a-z0-9-]*$ ]] && [ -f "$BUILDER" ] || { echo "no builder $BUILDER" >&2; exit 2; }

log() { printf '%s build.sh[%s]: %s\n' "$(date +%H:%M:%S)" "$NAME" "$*" >&2; }

# header values of the builder: `# lpmos-inputs: a b c` / `# lpmos-depends: x`
header() { sed -n "s/^# lpmos-$1: *//p" "$BUILDER" | tr '\n' ' '; }

packages_of() { # NAME -> package names from NAME.packages (comments, blank lines dropped)
    local f=$HERE/$1.packages
    [ -f "$f" ] && sed -e 's/#.*//' "$f" | tr -s ' \t' '\n' | sed '/^$/d'
    return 0
}

input_hash() {
    {
        echo "builder $NAME"
        sha256sum "$BUILDER" "$HERE/lib.sh" | sed "s#  $HERE/#  #"
        if [ -f "$HERE/$NAME.packages" ]; then
            sha256sum "$HERE/$NAME.packages" | sed "s#  $HERE/#  #"
            # the versions apt would install now: a new security update means a new image
            # shellcheck disable=SC2046
            LC_ALL=C apt-cache policy $(packages_of "$NAME") 2>/dev/null |
                sed -n -e 's/^\([^ ].*\):$/\1/p' -e 's/^ *Candidate: /  /p'
        fi
        for rel in $(header inputs); do
            [ -e "$REPO/$rel" ] || { echo "missing input $rel" >&2; exit 1; }
            (cd "$REPO" && find "$rel" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' \
                -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
        done
        for var in $(header env); do
            echo "env $var=${!var:-}"
        done
        for dep in $(header depends); do
            echo "depends $dep $("$0" "$dep" --hash)"
        done
    } | sha256sum | cut -c1-16
}

HASH=$(input_hash)
if [ "$ONLY_HASH" = 1 ]; then
    echo "$HASH"
    exit 0
fi
mkdir -p "$CACHE/debs"
CACHE=$(cd "$CACHE" && pwd)
OUT=$CACHE/$NAME-$HASH

# one build of NAME at a time (another process may be building the same artifact)
exec 9> "$CACHE/.$NAME.lock"
flock -w 3600 9 || { log "timed out waiting for the build lock"; exit 1; }

if [ "$FORCE" = 0 ] && [ -f "$OUT/manifest.json" ]; then
    log "cached: $OUT"
else
    dep_env=()
    for dep in $(header depends); do
        p=$("$0" "$dep")
        dep_env+=("DEP_$(echo "$dep" | tr 'a-z-' 'A-Z_')=$p")
    done
    TMP=$(mktemp -d "$CACHE/.$NAME-$HASH.tmp.XXXXXX")
    log "building into $TMP (inputs $HASH)"
    start=$(date +%s.%N)
    if ! env "${dep_env[@]}" LPMOS_REPO="$REPO" LPMOS_CACHE="$CACHE" \
        LPMOS_DEBS="$CACHE/debs" LPMOS_INPUT_HASH="$HASH" LPMOS_BUILD_START="$start" \
        bash "$BUILDER" "$TMP" >&2; then
        log "build failed (partial output left in $TMP for inspection)"
        exit 1
    fi
    [ -f "$TMP/manifest.json" ] || { log "builder wrote no manifest.json"; exit 1; }
    rm -rf "$OUT"
    mv "$TMP" "$OUT"
    log "built $OUT in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
fi
touch "$OUT"

# keep the newest $KEEP complete NAME-<hash> dirs (and never the one just returned);
# stale temporary dirs of failed builds of NAME older than a day go too
ls -1dt "$CACHE/$NAME"-* 2>/dev/null | grep -E "/$NAME-[0-9a-f]{16}$" | tail -n +$((KEEP + 1)) |
    while read -r old; do
        [ "$old" = "$OUT" ] && continue
        log "removing old $old"
        rm -rf "$old"
    done
find "$CACHE" -maxdepth 1 -name ".$NAME-*.tmp.*" -mtime +0 -exec rm -rf {} + 2>/dev/null || true
echo "$OUT"
