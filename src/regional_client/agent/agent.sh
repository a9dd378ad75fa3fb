#!/bin/sh
# Minimal LPMOS provisioning agent for busybox-only ramdisks (POSIX sh + busybox applets).
#
# Speaks the same agent API as `regional-client agent`: report -> isInInstallQueue ->
# getNextOperation -> run -> operationComplete ... until `reboot`.
#   hardware_config: scripts from getHardwareConfig run with their interpreter (default sh),
#                    under `timeout`, output (last 4000 bytes, ASCII) sent back with the exit code
#   os_install:      with params.url: stream the image to params.target (wget | lzop/gunzip/unxz
#                    | dd, sha256 checked when given, run_image_install); without (or
#                    installer noop): noop (reports progress a few times)
#   anything else:   reported unsupported
#
# Usage: agent.sh [CMDLINE_FILE]      (default /proc/cmdline)
# Kernel parameters: regional_url=http://host:port sn=SN mac=MAC|BOOTIF=01-..
#                    agent_reboot=CMD|none  agent_once=1
# Environment (tests, debugging): AGENT_ONCE=1, AGENT_IDLE=secs, AGENT_REBOOT_CMD=cmd|none,
#   AGENT_FAILURE_PAUSE=secs (after a failed operation),
#   AGENT_BACKOFF_MAX=secs, AGENT_MAX_TRIES=n (0: retry forever), AGENT_NOOP_STEPS=n,
#   AGENT_SYS=/sys root, AGENT_PROC=/proc root,
#   AGENT_INSTALL_TARGET=default image target, AGENT_INSTALL_TIMEOUT=secs (1800).
#
# The token: no boot config carries one. The answer to the first report of this boot does;
# it is kept in a plain (unexported) shell variable only: scripts and the reboot command never
# see it, and the answer's file is emptied at once. HTTP is spoken through `nc` with the
# request built by the shell's builtin printf, so the token never appears on any process's
# command line (wget would need it in --header).
# JSON requests are built with printf; answers are parsed with sed.

set -u

CMDLINE_FILE=${1:-/proc/cmdline}
SYS=${AGENT_SYS:-/sys}
PROC=${AGENT_PROC:-/proc}
IDLE=${AGENT_IDLE:-30}
BACKOFF_MAX=${AGENT_BACKOFF_MAX:-30}
MAX_TRIES=${AGENT_MAX_TRIES:-0}
NOOP_STEPS=${AGENT_NOOP_STEPS:-3}
mkdir -p "${TMPDIR:-/tmp}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lpmos-agent.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

URL= SN= TOKEN= RP_STATUS= MAC= ONCE=${AGENT_ONCE:-0} REBOOT_CMD=
[ -n "${AGENT_REBOOT_CMD+x}" ] && REBOOT_CMD=$AGENT_REBOOT_CMD
[ "$CMDLINE_FILE" = /proc/cmdline ] && [ -z "${AGENT_REBOOT_CMD+x}" ] && REBOOT_CMD="reboot -f"

log() {
    printf '%s lpmos-agent: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

die() {
    log "$*"
    exit 2
}

# ---- settings from the kernel command line ---------------------------------------------
parse_cmdline() {
    [ -r "$CMDLINE_FILE" ] || die "cannot read $CMDLINE_FILE"
    read -r pc_line < "$CMDLINE_FILE" || true
    set -f # split the line into words, but do not glob them
    for pc_word in $pc_line; do
        case $pc_word in
            --) break ;;
            regional_url=*) URL=${pc_word#*=} ;;
            sn=*) SN=${pc_word#*=} ;;
            mac=*) MAC=${pc_word#*=} ;;
            BOOTIF=*) [ -z "$MAC" ] && MAC=${pc_word#BOOTIF=01-} ;;
            agent_reboot=*) REBOOT_CMD=${pc_word#*=} ;;
            agent_once=1) ONCE=1 ;;
        esac
    done
    set +f
    [ "$REBOOT_CMD" = none ] && REBOOT_CMD=
    [ "$SN" = auto ] && SN=
    [ -z "$SN" ] && [ -r "$SYS/class/dmi/id/product_serial" ] &&
        read -r SN < "$SYS/class/dmi/id/product_serial"
    [ -z "$MAC" ] && MAC=$(first_mac)
    MAC=$(printf '%s' "$MAC" | tr 'A-F-' 'a-f:')
    [ -n "$URL" ] || die "no regional_url on the kernel command line"
    [ -n "$SN" ] || die "no sn on the kernel command line and no DMI serial"
    [ -n "$MAC" ] || die "no MAC address found"
    case $URL in
        http://*) ;;
        *) die "regional_url must be http:// (got $URL)" ;;
    esac
    pc_rest=${URL#http://}
    HOSTPORT=${pc_rest%%/*}
    PREFIX=
    case $pc_rest in */*) PREFIX=/${pc_rest#*/} ;; esac
    PREFIX=${PREFIX%/}
    HOST=${HOSTPORT%:*}
    PORT=${HOSTPORT##*:}
    [ "$HOST" = "$HOSTPORT" ] && PORT=80
}

first_mac() {
    for fm_up in 1 0; do
        for fm_dev in "$SYS"/class/net/*; do
            [ "${fm_dev##*/}" = lo ] && continue
            [ -e "$fm_dev/device" ] || continue
            fm_carrier=$(cat "$fm_dev/carrier" 2>/dev/null || echo 0)
            [ "$fm_up" = 1 ] && [ "$fm_carrier" != 1 ] && continue
            cat "$fm_dev/address"
            return 0
        done
    done
}

# ---- JSON helpers ---------------------------------------------------------------------
# json_str: stdin -> a JSON string body (no quotes): printable ASCII only, \ and " escaped,
# newlines as \n.
json_str() {
    tr '\t' ' ' | tr -cd '\012\040-\176' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' |
        sed -e ':a' -e 'N' -e '$!ba' -e 's/\n/\\n/g'
}

# json_field NAME: from a one-line JSON object on stdin, the raw (still escaped) string value
json_field() {
    sed -n "s/.*\"$1\": *\"\\([^\"\\\\]*\\(\\\\.[^\"\\\\]*\\)*\\)\".*/\\1/p"
}

# json_unescape: JSON string escapes -> bytes (\\ is parked on \001, which JSON never holds raw)
SOH=$(printf '\001')
json_unescape() {
    sed -e "s/\\\\\\\\/$SOH/g" -e 's/\\n/\n/g' -e 's/\\t/\t/g' -e 's/\\r/\r/g' \
        -e 's/\\"/"/g' -e 's/\\\//\//g' -e "s/$SOH/\\\\/g"
}

# ---- HTTP ------------------------------------------------------------------------------
# http_once PATH BODY: one POST; sets STATUS (000 when unreachable) and BODY_FILE.
# nc's stdin is a FIFO held open until nc exits: busybox nc half-closes the socket when its
# stdin ends, and some servers (uvicorn) drop a half-closed connection before answering.
http_once() {
    ho_len=$(printf '%s' "$2" | wc -c)
    BODY_FILE=$TMP/body
    rm -f "$TMP/fifo" "$TMP/resp"
    mkfifo -m 600 "$TMP/fifo"
    timeout 60 nc -w 30 "$HOST" "$PORT" < "$TMP/fifo" > "$TMP/resp" 2>/dev/null &
    ho_pid=$!
    exec 3> "$TMP/fifo"
    (
        trap '' PIPE # nc gone (refused): the write fails instead of killing the agent
        printf 'POST %s/api/v1%s HTTP/1.1\r\n' "$PREFIX" "$1"
        printf 'Host: %s\r\nContent-Type: application/json\r\n' "$HOSTPORT"
        printf 'Content-Length: %s\r\nConnection: close\r\n' "$ho_len"
        [ -n "$TOKEN" ] && printf 'Authorization: Bearer %s\r\n' "$TOKEN"
        printf 'User-Agent: lpmos-agent-sh\r\n\r\n%s' "$2"
    ) >&3 2>/dev/null
    wait "$ho_pid"
    exec 3>&-
    STATUS=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$TMP/resp")
    [ -n "$STATUS" ] || STATUS=000
    sed '1,/^\r*$/d' "$TMP/resp" | tr -d '\r\n' > "$BODY_FILE"
    : > "$TMP/resp"
}

# api PATH BODY: POST with retries (exponential backoff, jitter) on 000/5xx/429.
# Returns 0 on 2xx, 1 on other 4xx (STATUS/BODY_FILE tell which), exits 4 if MAX_TRIES spent.
api() {
    api_try=0
    api_delay=1
    while :; do
        http_once "$1" "$2"
        case $STATUS in
            2??) return 0 ;;
            000 | 5?? | 429) ;;
            *) return 1 ;;
        esac
        api_try=$((api_try + 1))
        if [ "$MAX_TRIES" -gt 0 ] && [ "$api_try" -ge "$MAX_TRIES" ]; then
            log "giving up on $1 after $api_try tries (status $STATUS)"
            exit 4
        fi
        api_jitter=$(($(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % (api_delay * 500 + 1)))
        api_sleep=$((api_delay * 500 + api_jitter))
        log "$1: status $STATUS, retry $api_try in ${api_sleep}ms"
        sleep "$((api_sleep / 1000)).$(printf '%03d' $((api_sleep % 1000)))"
        api_delay=$((api_delay * 2))
        [ "$api_delay" -gt "$BACKOFF_MAX" ] && api_delay=$BACKOFF_MAX
    done
}

# ---- inventory -------------------------------------------------------------------------
inventory() {
    iv_cpus=$(grep -c '^processor' "$PROC/cpuinfo")
    iv_model=$(sed -n 's/^model name[^:]*: *//p' "$PROC/cpuinfo" | head -n 1 | json_str)
    iv_mem=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' "$PROC/meminfo")
    iv_disks= iv_sep=
    for iv_d in "$SYS"/block/*; do
        iv_n=${iv_d##*/}
        case $iv_n in loop* | ram* | zram* | dm-* | md* | sr* | nbd* | fd* | '*') continue ;; esac
        iv_size=$(cat "$iv_d/size" 2>/dev/null || echo 0)
        iv_rot=$(cat "$iv_d/queue/rotational" 2>/dev/null || echo 0)
        iv_rot=$([ "$iv_rot" = 1 ] && echo true || echo false)
        iv_disks="$iv_disks$iv_sep{\"name\":\"$iv_n\",\"size_bytes\":$((iv_size * 512)),\"rotational\":$iv_rot}"
        iv_sep=,
    done
    iv_nics= iv_sep=
    for iv_d in "$SYS"/class/net/*; do
        iv_n=${iv_d##*/}
        case $iv_n in lo | '*') continue ;; esac
        iv_mac=$(cat "$iv_d/address" 2>/dev/null)
        iv_car=$([ "$(cat "$iv_d/carrier" 2>/dev/null)" = 1 ] && echo true || echo false)
        iv_nics="$iv_nics$iv_sep{\"name\":\"$iv_n\",\"mac\":\"$iv_mac\",\"carrier\":$iv_car}"
        iv_sep=,
    done
    iv_dmi=$SYS/class/dmi/id
    iv_vendor=$(cat "$iv_dmi/sys_vendor" 2>/dev/null | json_str)
    iv_product=$(cat "$iv_dmi/product_name" 2>/dev/null | json_str)
    iv_serial=$(cat "$iv_dmi/product_serial" 2>/dev/null | json_str)
    printf '{"agent":"sh","cpu":{"count":%s,"model":"%s"},"memory":{"total_bytes":%s},' \
        "${iv_cpus:-0}" "$iv_model" "$((${iv_mem:-0} * 1024))"
    printf '"system":{"vendor":"%s","product":"%s","serial":"%s"},' \
        "$iv_vendor" "$iv_product" "$iv_serial"
    printf '"disks":[%s],"nics":[%s]}' "$iv_disks" "$iv_nics"
}

# ---- operations ------------------------------------------------------------------------
progress() { # OPERATION PERCENT MESSAGE (best effort, one try)
    http_once /progress "{\"sn\":\"$SN\",\"operation\":\"$1\",\"percent\":$2,\"message\":\"$3\"}"
}

complete() { # OPERATION true|false MESSAGE [OUTPUT_FILE] [EXIT_CODE]
    cp_out=
    [ -n "${4:-}" ] && cp_out=",\"output\":\"$(tail -c 4000 "$4" | json_str)\""
    cp_code=
    [ -n "${5:-}" ] && cp_code=",\"exit_code\":$5"
    cp_msg=$(printf '%s' "$3" | json_str)
    if ! api /device/operationComplete \
        "{\"sn\":\"$SN\",\"operation\":\"$1\",\"success\":$2,\"message\":\"$cp_msg\"$cp_out$cp_code}"; then
        case $STATUS in 401 | 403) die "operationComplete refused ($STATUS)" ;; esac
        log "operationComplete not recorded ($STATUS): $(cat "$BODY_FILE")"
    fi
    [ "$2" = true ] || sleep "${AGENT_FAILURE_PAUSE:-2}"
}

run_hardware_config() {
    if ! api /device/getHardwareConfig "{\"sn\":\"$SN\"}"; then
        complete hardware_config false "getHardwareConfig failed with HTTP $STATUS"
        return
    fi
    # one script object per line: `},{"` can only occur between objects (quotes inside JSON
    # strings are always escaped)
    {
        sed -e 's/^.*"scripts": *\[//' -e 's/\] *} *$//' -e 's/},{"/}\n{"/g' "$BODY_FILE"
        echo
    } > "$TMP/scripts"
    hw_total=$(grep -c . "$TMP/scripts")
    hw_i=0
    : > "$TMP/output"
    hw_code=0
    hw_msg="$hw_total scripts ok"
    while read -r hw_obj; do
        [ -n "$hw_obj" ] || continue
        hw_name=$(printf '%s\n' "$hw_obj" | json_field name | json_unescape)
        hw_interp=$(printf '%s\n' "$hw_obj" | json_field interpreter | json_unescape)
        hw_timeout=$(printf '%s\n' "$hw_obj" | sed -n 's/.*"timeout": *\([0-9]*\).*/\1/p')
        printf '%s\n' "$hw_obj" | json_field content | json_unescape > "$TMP/script"
        progress hardware_config $((hw_i * 100 / hw_total)) "running $hw_name"
        log "running hardware script $hw_name ($hw_interp, timeout ${hw_timeout:-600}s)"
        printf '== %s ==\n' "$hw_name" >> "$TMP/output"
        if ! command -v "${hw_interp%% *}" > /dev/null 2>&1; then
            hw_code=127
            printf 'interpreter %s not found\n' "$hw_interp" >> "$TMP/output"
        else
            hw_start=$(date +%s)
            # shellcheck disable=SC2086 # the interpreter may carry arguments
            (cd "$TMP" && timeout "${hw_timeout:-600}" ${hw_interp:-sh} "$TMP/script") \
                < /dev/null >> "$TMP/output" 2>&1
            hw_code=$?
            # busybox timeout exits 128+SIGTERM, coreutils 124: report 124 like the Python agent
            if [ "$hw_code" -gt 123 ] &&
                [ $(($(date +%s) - hw_start)) -ge "${hw_timeout:-600}" ]; then
                hw_code=124
                printf '\n[killed: timeout after %ss]\n' "${hw_timeout:-600}" >> "$TMP/output"
            fi
        fi
        hw_i=$((hw_i + 1))
        if [ "$hw_code" != 0 ]; then
            hw_msg="script $hw_name failed with exit code $hw_code"
            [ "$hw_code" = 124 ] && hw_msg="script $hw_name timed out"
            break
        fi
    done < "$TMP/scripts"
    [ "$hw_total" = 0 ] && hw_msg="no hardware scripts"
    if [ "$hw_code" = 0 ]; then
        progress hardware_config 100 "$hw_total hardware scripts done"
        complete hardware_config true "$hw_msg" "$TMP/output" 0
    else
        complete hardware_config false "$hw_msg" "$TMP/output" "$hw_code"
    fi
}

run_os_install() {
    oi_url=$(json_field url < "$BODY_FILE" | json_unescape)
    oi_installer=$(json_field installer < "$BODY_FILE")
    if [ -z "$oi_url" ] || [ "$oi_installer" = noop ]; then
        oi_i=1
        while [ "$oi_i" -le "$NOOP_STEPS" ]; do
            progress os_install $((oi_i * 100 / NOOP_STEPS)) "noop install step $oi_i/$NOOP_STEPS"
            oi_i=$((oi_i + 1))
        done
        complete os_install true "noop install done ($NOOP_STEPS steps)" "" 0
        return
    fi
    run_image_install
}

# os_install with params url (http://), sha256 (of the bytes served, optional), compression
# (lzo|gzip|xz|none; default from the URL suffix), target (block device or file; default
# $AGENT_INSTALL_TARGET): wget | decompress | dd under `timeout` (busybox wget's own -T
# segfaults), pipefail so a failed download or a truncated stream fails the operation, then
# blockdev --rereadpt.
run_image_install() {
    oi_target=$(json_field target < "$BODY_FILE" | json_unescape)
    [ -n "$oi_target" ] || oi_target=${AGENT_INSTALL_TARGET:-}
    oi_sha=$(json_field sha256 < "$BODY_FILE" | tr 'A-F' 'a-f')
    oi_comp=$(json_field compression < "$BODY_FILE")
    if [ -z "$oi_comp" ]; then
        case ${oi_url%%\?*} in
            *.lzo) oi_comp=lzo ;; *.gz) oi_comp=gzip ;; *.xz) oi_comp=xz ;; *) oi_comp=none ;;
        esac
    fi
    case $oi_comp in
        lzo) oi_dec="lzop -dc" ;; gzip) oi_dec="gunzip -c" ;; xz) oi_dec="unxz -c" ;;
        none) oi_dec=cat ;;
        *) complete os_install false "unsupported compression $oi_comp" "" 2; return ;;
    esac
    case $oi_url in
        http://*) ;;
        *) complete os_install false "params.url must be http:// (sh agent)" "" 2; return ;;
    esac
    [ -n "$oi_target" ] || { complete os_install false "no params.target" "" 2; return; }
    if grep -q "^$oi_target[0-9p]* " "$PROC/mounts" 2>/dev/null; then
        complete os_install false "target $oi_target is mounted" "" 2
        return
    fi
    progress os_install 5 "writing $oi_comp image to $oi_target"
    log "os_install: $oi_url ($oi_comp) -> $oi_target"
    oi_start=$(date +%s)
    rm -f "$TMP/hash" "$TMP/sum"
    (
        set -o pipefail
        if [ -n "$oi_sha" ]; then
            mkfifo "$TMP/hash"
            sha256sum < "$TMP/hash" > "$TMP/sum" &
            timeout "${AGENT_INSTALL_TIMEOUT:-1800}" wget -q -O- "$oi_url" | tee "$TMP/hash" |
                $oi_dec | dd of="$oi_target" bs=4M 2> "$TMP/dd"
            oi_rc=$?
            wait
            exit $oi_rc
        fi
        timeout "${AGENT_INSTALL_TIMEOUT:-1800}" wget -q -O- "$oi_url" | $oi_dec |
            dd of="$oi_target" bs=4M 2> "$TMP/dd"
    )
    oi_rc=$?
    sync
    oi_secs=$(($(date +%s) - oi_start))
    oi_records=$(sed -n 's/ records out$//p' "$TMP/dd" | tail -n 1) # busybox dd has no byte count
    if [ "$oi_rc" != 0 ]; then
        complete os_install false "image write failed (exit $oi_rc after ${oi_secs}s)" "$TMP/dd" "$oi_rc"
        return
    fi
    if [ -n "$oi_sha" ]; then
        oi_got=$(cut -d' ' -f1 "$TMP/sum" 2>/dev/null)
        if [ "$oi_got" != "$oi_sha" ]; then
            complete os_install false "sha256 mismatch: got $oi_got" "" 1
            return
        fi
    fi
    [ -b "$oi_target" ] && blockdev --rereadpt "$oi_target" 2>/dev/null
    progress os_install 100 "image written"
    complete os_install true "wrote $oi_comp image to $oi_target in ${oi_secs}s (dd: ${oi_records:-?} records)" "" 0
}

# ---- main loop -------------------------------------------------------------------------
idle() {
    [ "$ONCE" = 1 ] && { log "nothing to do: $1"; exit 0; }
    sleep "$IDLE"
}

# report: send the inventory; the answer to the first report of a boot carries the token.
report() {
    if ! api /report "{\"sn\":\"$SN\",\"mac\":\"$MAC\",\"hardware\":$(inventory)}"; then
        log "report refused ($STATUS): $(json_field message < "$BODY_FILE")"
        exit 3
    fi
    rp_token=$(json_field token < "$BODY_FILE")
    RP_STATUS=$(json_field status < "$BODY_FILE")
    : > "$BODY_FILE"
    [ -n "$rp_token" ] && TOKEN=$rp_token
    rp_token=
    log "reported: $RP_STATUS (token: $([ -n "$TOKEN" ] && echo yes || echo no))"
}

main() {
    parse_cmdline
    log "regional client $URL, serial $SN, mac $MAC"
    report
    while :; do
        if [ -z "$TOKEN" ]; then
            idle "no agent session for this boot yet ($RP_STATUS)"
            report
            continue
        fi
        if ! api /device/isInInstallQueue "{\"sn\":\"$SN\"}"; then
            # 403: the task left installing, this boot's session is over
            [ "$STATUS" = 403 ] && { TOKEN=; RP_STATUS="not in the install queue"; continue; }
            [ "$STATUS" = 404 ] || die "isInInstallQueue refused ($STATUS)"
            idle "unknown serial"
            continue
        fi
        if ! grep -q '"result": *true' "$BODY_FILE"; then
            idle "not in the install queue"
            continue
        fi
        if ! api /device/getNextOperation "{\"sn\":\"$SN\"}"; then
            [ "$STATUS" = 403 ] && { TOKEN=; RP_STATUS="not in the install queue"; continue; }
            [ "$STATUS" = 404 ] || die "getNextOperation refused ($STATUS)"
            idle "task gone"
            continue
        fi
        op=$(sed -n 's/^{"operation": *"\([a-z_A-Z0-9]*\)".*/\1/p' "$BODY_FILE")
        log "operation: $op"
        case $op in
            reboot)
                sync
                if [ -n "$REBOOT_CMD" ]; then
                    log "rebooting: $REBOOT_CMD"
                    $REBOOT_CMD
                else
                    log "all operations done; no reboot command configured"
                fi
                exit 0
                ;;
            none) idle "no operation" ;;
            hardware_config) run_hardware_config ;;
            os_install) run_os_install ;;
            *) complete "$op" false "unsupported operation $op (sh agent)" "" 2 ;;
        esac
    done
}

main
