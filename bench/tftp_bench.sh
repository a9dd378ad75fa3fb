#!/usr/bin/env bash
# TFTP and HTTP boot throughput: our server vs tftp-hpa (in.tftpd) vs dnsmasq's TFTP, and our
# HTTP boot vs nginx, on the same 64 MiB file in the same run.
#
# dnsmasq cannot move its TFTP port off 69, so every server runs inside a private network
# namespace (bootb-srv-PID) on its own address, and every client inside a second one
# (bootb-cli-PID), joined by a veth pair (MTU 1500). Nothing touches the host's network.
#
#   sudo bench/tftp_bench.sh            # REPS=3 single-stream runs (median), one 50-client run
#   REPS=1 CONC=20 bench/tftp_bench.sh  # quicker
#
# MB/s = 10^6 bytes per second of wall time per download (aggregate for the concurrent runs).
# Needs: iproute2, curl, atftp, tftpd-hpa, dnsmasq-base, nginx-light; run as root.
set -euo pipefail

REPS=${REPS:-3}
CONC=${CONC:-50}
SIZE_MB=${SIZE_MB:-64}
TIMEOUT=${TIMEOUT:-240}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SRV=bootb-srv-$$
CLI=bootb-cli-$$
WORK=$(mktemp -d /tmp/bootbench.XXXXXX)
ROOT=$WORK/root
OUT=/dev/shm/bootbench-$$
OURS=10.201.0.1
HPA=10.201.0.3
DNSM=10.201.0.4
CLIIP=10.201.0.2
HTTP_PORT=8081
NGINX_PORT=8082
PIDS=()

cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    sleep 0.3
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
    rm -rf "$WORK" "$OUT"
}
trap cleanup EXIT

in_srv() { ip netns exec "$SRV" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }

setup_net() {
    ip netns add "$SRV"
    ip netns add "$CLI"
    ip link add "bbs$$" type veth peer name "bbc$$"
    ip link set "bbs$$" netns "$SRV"
    ip link set "bbc$$" netns "$CLI"
    in_srv ip link set lo up
    in_cli ip link set lo up
    in_srv ip addr add "$OURS/24" dev "bbs$$"
    in_srv ip addr add "$HPA/24" dev "bbs$$"
    in_srv ip addr add "$DNSM/24" dev "bbs$$"
    in_cli ip addr add "$CLIIP/24" dev "bbc$$"
    in_srv ip link set "bbs$$" up
    in_cli ip link set "bbc$$" up
}

start_servers() {
    mkdir -p "$ROOT" "$OUT"
    chmod 755 "$WORK" "$ROOT"
    head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$ROOT/image.bin"
    chmod 644 "$ROOT/image.bin"
    WANT=$(sha256sum "$ROOT/image.bin" | cut -d' ' -f1)
    cat "$ROOT/image.bin" > /dev/null  # page cache warm for everybody
    # started without a shell function so that $! is the server itself (ip netns exec execs it)
    ip netns exec "$SRV" env PYTHONPATH="$HERE/src" python -m regional_client.tftp \
        --root "$ROOT" --listen "$OURS:69" --max-clients 200 & PIDS+=($!)
    ip netns exec "$SRV" in.tftpd -L -s "$ROOT" -u root -a "$HPA:69" & PIDS+=($!)
    ip netns exec "$SRV" dnsmasq --keep-in-foreground --port=0 --enable-tftp --tftp-root="$ROOT" \
        --listen-address="$DNSM" --bind-interfaces --tftp-max=200 --user=root \
        --pid-file="$WORK/dnsmasq.pid" --quiet-tftp --log-facility="$WORK/dnsmasq.log" & PIDS+=($!)
    ip netns exec "$SRV" env PYTHONPATH="$HERE/src" python "$HERE/bench/httpboot_serve.py" \
        "$ROOT" "$OURS" "$HTTP_PORT" & PIDS+=($!)
    mkdir -p "$WORK/ngx"
    cat > "$WORK/nginx.conf" <<NGX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/ngx/error.log;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path $WORK/ngx; proxy_temp_path $WORK/ngx; fastcgi_temp_path $WORK/ngx;
  uwsgi_temp_path $WORK/ngx; scgi_temp_path $WORK/ngx;
  server { listen $OURS:$NGINX_PORT; location /boot/ { alias $ROOT/; } }
}
NGX
    in_srv nginx -c "$WORK/nginx.conf" -p "$WORK/ngx"
    sleep 2
}

now() { date +%s.%N; }
mbps() { python3 -c "import sys; print(f'{$1 / 1e6 / ($3 - $2):.1f}')"; }
median() { python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f'{statistics.median(v):.1f}')" "$@"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}' if $2 else 'n/a')"; }
BYTES=$((SIZE_MB * 1024 * 1024))

# one_tftp HOST BLKSIZE WINDOW -> MB/s (checksum verified; "FAIL" otherwise)
one_tftp() {
    local host=$1 blk=$2 win=$3 f="$OUT/single" t0 t1
    rm -f "$f"
    local opts=(--option "blksize $blk" --option "tsize 0")
    [ "$win" -gt 1 ] && opts+=(--option "windowsize $win")
    t0=$(now)
    if ! timeout "$TIMEOUT" ip netns exec "$CLI" atftp "${opts[@]}" -g -r image.bin -l "$f" \
        "$host" 69 >/dev/null 2>&1; then echo FAIL; return; fi
    t1=$(now)
    if [ "$(sha256sum "$f" | cut -d' ' -f1)" != "$WANT" ]; then echo FAIL; return; fi
    mbps "$BYTES" "$t0" "$t1"
}

# conc_tftp HOST N -> aggregate MB/s (curl, blksize 1468, lock-step; sizes checked)
conc_tftp() {
    local host=$1 n=$2 t0 t1 i ok=0
    t0=$(now)
    for i in $(seq 1 "$n"); do
        in_cli timeout "$TIMEOUT" curl -s --tftp-blksize 1468 -o /dev/null \
            -w '%{size_download}\n' "tftp://$host/image.bin" > "$OUT/c$i" 2>&1 &
    done
    wait
    t1=$(now)
    for i in $(seq 1 "$n"); do [ "$(cat "$OUT/c$i")" = "$BYTES" ] && ok=$((ok + 1)); done
    [ "$ok" -ne "$n" ] && { echo "FAIL($ok/$n)"; return; }
    mbps $((BYTES * n)) "$t0" "$t1"
}

# conc_win HOST N -> aggregate MB/s (atftp, blksize 1468 + windowsize 16, exit codes checked;
# servers without RFC 7440 ignore the option and run lock-step)
conc_win() {
    local host=$1 n=$2 t0 t1 i ok=0
    t0=$(now)
    for i in $(seq 1 "$n"); do
        ( timeout "$TIMEOUT" ip netns exec "$CLI" atftp --option "blksize 1468" \
            --option "windowsize 16" -g -r image.bin -l /dev/null "$host" 69 >/dev/null 2>&1 \
            && echo ok > "$OUT/w$i" || echo fail > "$OUT/w$i" ) &
    done
    wait
    t1=$(now)
    for i in $(seq 1 "$n"); do [ "$(cat "$OUT/w$i")" = ok ] && ok=$((ok + 1)); done
    [ "$ok" -ne "$n" ] && { echo "FAIL($ok/$n)"; return; }
    mbps $((BYTES * n)) "$t0" "$t1"
}

# one_http URL -> MB/s ; conc_http URL N -> aggregate MB/s
one_http() {  # timed to /dev/null (a hash in the pipe would be the bottleneck), checked after
    local t0 t1 got
    t0=$(now)
    got=$(in_cli curl -s -o /dev/null -w '%{size_download}' "$1")
    t1=$(now)
    [ "$got" = "$BYTES" ] || { echo FAIL; return; }
    [ "$(in_cli curl -s "$1" | sha256sum | cut -d' ' -f1)" = "$WANT" ] || { echo FAIL; return; }
    mbps "$BYTES" "$t0" "$t1"
}
conc_http() {
    local t0 t1 i ok=0
    t0=$(now)
    for i in $(seq 1 "$2"); do
        in_cli curl -s -o /dev/null -w '%{size_download}\n' "$1" > "$OUT/h$i" &
    done
    wait
    t1=$(now)
    for i in $(seq 1 "$2"); do [ "$(cat "$OUT/h$i")" = "$BYTES" ] && ok=$((ok + 1)); done
    [ "$ok" -ne "$2" ] && { echo "FAIL($ok/$2)"; return; }
    mbps $((BYTES * $2)) "$t0" "$t1"
}

row() { printf '%-34s %9s %9s %9s %10s %10s\n' "$@"; }

setup_net
start_servers
echo "file: ${SIZE_MB} MiB, veth between two namespaces; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "clients: atftp (single stream), curl --tftp-blksize 1468 (concurrent), atftp (concurrent window)"
echo "single-stream: median of $REPS runs; MB/s = 1e6 bytes/s"
row "case" "ours" "tftp-hpa" "dnsmasq" "ours/hpa" "ours/dnsm"
for blk in 512 1468; do
    for win in 1 16; do
        o=(); h=(); d=()
        for _ in $(seq 1 "$REPS"); do
            o+=("$(one_tftp $OURS "$blk" "$win")")
            h+=("$(one_tftp $HPA "$blk" "$win")")
            d+=("$(one_tftp $DNSM "$blk" "$win")")
        done
        if printf '%s\n' "${o[@]}" "${h[@]}" "${d[@]}" | grep -q FAIL; then
            row "blksize $blk windowsize $win" "${o[*]}" "${h[*]}" "${d[*]}" "-" "-"
            continue
        fi
        mo=$(median "${o[@]}"); mh=$(median "${h[@]}"); md=$(median "${d[@]}")
        row "blksize $blk windowsize $win" "$mo" "$mh" "$md" "$(ratio "$mo" "$mh")" "$(ratio "$mo" "$md")"
    done
done
co=$(conc_tftp $OURS "$CONC"); ch=$(conc_tftp $HPA "$CONC"); cd_=$(conc_tftp $DNSM "$CONC")
if [[ "$co$ch$cd_" == *FAIL* ]]; then
    row "$CONC concurrent, blksize 1468" "$co" "$ch" "$cd_" "-" "-"
else
    row "$CONC concurrent, blksize 1468" "$co" "$ch" "$cd_" "$(ratio "$co" "$ch")" "$(ratio "$co" "$cd_")"
fi
wo=$(conc_win $OURS "$CONC"); wh=$(conc_win $HPA "$CONC"); wd=$(conc_win $DNSM "$CONC")
if [[ "$wo$wh$wd" == *FAIL* ]]; then
    row "$CONC concurrent, 1468 + window 16" "$wo" "$wh" "$wd" "-" "-"
else
    row "$CONC concurrent, 1468 + window 16" "$wo" "$wh" "$wd" "$(ratio "$wo" "$wh")" "$(ratio "$wo" "$wd")"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (2 shared cores)"
echo
row "HTTP boot (curl)" "ours" "nginx" "" "ours/nginx" ""
ho=(); hn=()
for _ in $(seq 1 "$REPS"); do
    ho+=("$(one_http "http://$OURS:$HTTP_PORT/boot/image.bin")")
    hn+=("$(one_http "http://$OURS:$NGINX_PORT/boot/image.bin")")
done
mo=$(median "${ho[@]}"); mn=$(median "${hn[@]}")
row "single stream" "$mo" "$mn" "" "$(ratio "$mo" "$mn")" ""
co=$(conc_http "http://$OURS:$HTTP_PORT/boot/image.bin" 20)
cn=$(conc_http "http://$OURS:$NGINX_PORT/boot/image.bin" 20)
row "20 concurrent" "$co" "$cn" "" "$(ratio "$co" "$cn")" ""
