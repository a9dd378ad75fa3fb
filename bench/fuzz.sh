#!/usr/bin/env bash
# Longer coverage-guided fuzzing of the network parsers (tests/fuzz/targets.py), one target at
# a time, with a corpus kept between runs under $FUZZ_DIR (default ~/.cache/lpmos-fuzz).
#   bash bench/fuzz.sh [SECONDS per target, default 600] [dhcp tftp range]
# A failure leaves crash-<sha1> (the input) in $FUZZ_DIR/<target>/ and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=${*:-dhcp tftp range}
dir=${FUZZ_DIR:-$HOME/.cache/lpmos-fuzz}
export PYTHONPATH="$PWD/src:$PWD"
for t in $targets; do
  mkdir -p "$dir/$t/corpus"
  echo "== $t: ${secs}s, corpus $dir/$t/corpus"
  (cd "$dir/$t" && python3 -m tests.fuzz.targets "$t" -max_total_time="$secs" \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 corpus) 2>&1 | grep -E "^(Done|stat::|==|INFO: seed)" || true
  if ls "$dir/$t"/crash-* >/dev/null 2>&1; then echo "$t: crash inputs in $dir/$t"; exit 1; fi
done
