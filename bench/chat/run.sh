#!/usr/bin/env bash
# Chat benchmark: envhub's chat socket (GET /api/chat, docs/chat.md) on 127.0.0.1, driven by
# Python `websockets` clients spread over several processes. Two measurements:
#
#   live  1,000 sockets subscribed to one room; one more socket sends `send` frames at
#         100 messages/s for 30 s (each acknowledged once stored). Per delivery: latency =
#         receive time - send time (CLOCK_MONOTONIC, the same clock in every process, read just
#         before the sender writes the frame); after a drain period, lost = for each
#         subscriber, acknowledged messages it never received. Also the rate achieved, the
#         hub's CPU and RSS, and the clients' own CPU (they share the 2 cores with the hub).
#   idle  a fresh hub (restarted on the same data), 100 warm-up sockets kept open, then
#         10,000 more authenticated sockets, each subscribed to the room and then silent:
#         (hub VmRSS with them open - VmRSS before) / 10,000.
#
# then prints a table with the targets (p99 <= 50 ms, 0 lost, <= 30 KB per idle
# connection). Raw results are saved under bench/out/chat-*/.
#
# Sends go over the socket (`send` frames, one sender connection, not waiting for each ack
# before the next send): the path a chat client uses. Sockets share a few users' tokens
# (BENCH_CHAT_USERS users, created through the API: bcrypt makes thousands slow to create);
# the sender is the admin.
#
# Environment:
#   BENCH_CHAT_SUBSCRIBERS=1000  subscribed sockets in the live measurement
#   BENCH_CHAT_RATE=100          messages per second sent
#   BENCH_CHAT_DURATION=30       seconds of sending
#   BENCH_CHAT_DRAIN=5           seconds after the last send before losses are counted
#   BENCH_CHAT_IDLE=10000        idle sockets in the idle measurement
#   BENCH_CHAT_IDLE_WARMUP=100   sockets opened (and kept open) before the idle "before" RSS
#   BENCH_CHAT_IDLE_SUBSCRIBE=1  0: idle sockets join no room (each sends one `ping` instead)
#   BENCH_CHAT_CLIENT_PROCS=4    client processes the sockets are spread over (each phase)
#   BENCH_CHAT_CLIENT=c          the live subscribers: c (chat_client.c, compiled here with cc,
#                                5-6 us of CPU per frame, mostly system calls) or python
#                                (chat_client.py, 7-10 us)
#   BENCH_CHAT_CLIENT_NICE=0     niceness of the live subscriber processes (10, say: below the
#                                hub, as if they ran elsewhere; the sender keeps the hub's)
#   BENCH_CHAT_USERS=10          users whose tokens the sockets share
#   BENCH_CHAT_UVLOOP=1          0: the clients run on asyncio's own loop (about 2x their CPU)
#   BENCH_MEASURE=live,idle      measurements
#   BENCH_REBUILD=1              rebuild .build/release/envhub even if it exists
#   BENCH_ENVHUB_BIN=path        benchmark this envhub binary instead (no build)
#   BENCH_START_TIMEOUT=90       seconds the hub gets to become ready
#   BENCH_KEEP=1                 keep the temp dir (hub logs, data)
#
# Setup is done here and is idempotent (root for the apt step): apt packages curl and
# python3-venv if missing; a venv with `websockets` and `uvloop` from PyPI in
# .build/bench-chat; the release build of envhub.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../api/lib.sh
. "$(dirname "$0")/../api/lib.sh"
BENCH_CHAT_DIR="$REPO_ROOT/bench/chat"

BENCH_CHAT_SUBSCRIBERS="${BENCH_CHAT_SUBSCRIBERS:-1000}"
BENCH_CHAT_RATE="${BENCH_CHAT_RATE:-100}"
BENCH_CHAT_DURATION="${BENCH_CHAT_DURATION:-30}"
BENCH_CHAT_DRAIN="${BENCH_CHAT_DRAIN:-5}"
BENCH_CHAT_IDLE="${BENCH_CHAT_IDLE:-10000}"
BENCH_CHAT_IDLE_WARMUP="${BENCH_CHAT_IDLE_WARMUP:-100}"
BENCH_CHAT_IDLE_SUBSCRIBE="${BENCH_CHAT_IDLE_SUBSCRIBE:-1}"
BENCH_CHAT_CLIENT_PROCS="${BENCH_CHAT_CLIENT_PROCS:-4}"
BENCH_CHAT_CLIENT="${BENCH_CHAT_CLIENT:-c}"
BENCH_CHAT_CLIENT_NICE="${BENCH_CHAT_CLIENT_NICE:-0}"
BENCH_CHAT_USERS="${BENCH_CHAT_USERS:-10}"
room=bench

measurements=()
IFS=',' read -r -a wanted <<<"${BENCH_MEASURE:-live,idle}"
for m in "${wanted[@]}"; do
    case "$m" in
        live|idle) measurements+=("$m") ;;
        "") ;;
        *) die "unknown BENCH_MEASURE entry '$m' (live, idle)" ;;
    esac
done
[ ${#measurements[@]} -gt 0 ] || die "BENCH_MEASURE selects nothing"
measures() { [[ " ${measurements[*]} " == *" $1 "* ]]; }

# --- Setup (each step is skipped when already done) -------------------------------
apt_updated=0
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "need root to apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" = 0 ]; then apt-get update -q >&2; apt_updated=1; fi
    apt-get install -y -q "$@" >&2
}

command -v curl >/dev/null || { log "installing curl"; apt_install curl; }
command -v python3 >/dev/null || die "python3 is required"

venv="$REPO_ROOT/.build/bench-chat"
if [ ! -f "$venv/.installed-websockets-uvloop" ]; then
    log "creating $venv with websockets and uvloop from PyPI"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        apt_install python3-venv  # Debian's python3 ships venv support separately
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check websockets uvloop >&2
    touch "$venv/.installed-websockets-uvloop"
fi
python="$venv/bin/python"

client_c_args=()
case "$BENCH_CHAT_CLIENT" in
    c)
        command -v cc >/dev/null || { log "installing gcc"; apt_install gcc libc6-dev; }
        client_c="$REPO_ROOT/.build/bench-chat/chat_client_c"
        if [ ! -x "$client_c" ] || [ "$BENCH_CHAT_DIR/chat_client.c" -nt "$client_c" ]; then
            log "compiling bench/chat/chat_client.c"
            cc -O2 -Wall -o "$client_c" "$BENCH_CHAT_DIR/chat_client.c"
        fi
        client_c_args=(--client-c "$client_c") ;;
    python) ;;
    *) die "BENCH_CHAT_CLIENT must be c or python, not '$BENCH_CHAT_CLIENT'" ;;
esac

bin="${BENCH_ENVHUB_BIN:-$REPO_ROOT/.build/release/envhub}"
if [ -z "${BENCH_ENVHUB_BIN:-}" ] && { [ ! -x "$bin" ] || [ "${BENCH_REBUILD:-0}" = 1 ]; }; then
    log "building envhub (swift build -c release --product envhub)"
    (cd "$REPO_ROOT" && swift build -c release --product envhub) >&2
fi
[ -x "$bin" ] || die "$bin missing"

# --- Work dir, and stopping everything on exit ----------------------------------------
BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/envhub-bench-chat.XXXXXX")
envhub_pid="" client_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop_bg "$client_pid"  # the driver and its worker processes: one session
    stop_bg "$envhub_pid"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every socket is a descriptor in the hub and one in a client process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((BENCH_CHAT_IDLE + BENCH_CHAT_IDLE_WARMUP + 200)) ] \
    || log "warning: open-file limit $(ulimit -n) is low for $BENCH_CHAT_IDLE sockets"

# --- envhub ------------------------------------------------------------------------------
mkdir -p "$BENCH_WORK/envhub-data" "$BENCH_WORK/out"
admin_password="bench-admin-$("$python" -c 'import secrets; print(secrets.token_hex(12))')"
start_envhub() {  # start_envhub LOG: a hub on a free port, on the run's data dir
    envhub_port=$(free_port)
    envhub_base="http://127.0.0.1:$envhub_port"
    log "starting envhub on :$envhub_port"
    start_bg "$BENCH_WORK/$1" env ENVHUB_ADMIN_PASSWORD="$admin_password" \
        ENVHUB_DATA_DIR="$BENCH_WORK/envhub-data" "$bin" serve --host 127.0.0.1 --port "$envhub_port"
    envhub_pid=$!
    wait_http "$envhub_pid" "$envhub_base/readyz" 200 "$BENCH_WORK/$1" || die "envhub did not become ready"
}

# api METHOD PATH EXPECTED_STATUS [JSON]: call envhub's API as $token, print the response body.
api() {
    local method=$1 path=$2 want=$3 body=${4:-} code
    local -a args=(-s -o "$BENCH_WORK/response.json" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json')
    [ -n "${token:-}" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$body" ] && args+=(--data "$body")
    code=$(curl "${args[@]}" "$envhub_base$path")
    if [ "$code" != "$want" ]; then
        log "$method $path answered $code, expected $want:"; cat "$BENCH_WORK/response.json" >&2; echo >&2
        return 1
    fi
    cat "$BENCH_WORK/response.json"
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
login() { token="" api POST /api/auth/login 200 "{\"username\":\"$1\",\"password\":\"$2\"}" | json_field token; }

start_envhub envhub.log
token=$(login admin "$admin_password")
admin_token=$token
api POST /api/rooms 201 "{\"name\":\"$room\",\"description\":\"bench/chat\"}" >/dev/null
# Sessions are rows in the store, so these tokens stay valid across the restart below.
log "creating $BENCH_CHAT_USERS users (bcrypt: about a second each for creation and login)"
: >"$BENCH_WORK/tokens.txt"
user_password="bench-user-$("$python" -c 'import secrets; print(secrets.token_hex(12))')"
for i in $(seq "$BENCH_CHAT_USERS"); do
    api POST /api/users 201 "{\"username\":\"bench$i\",\"password\":\"$user_password\"}" >/dev/null
    login "bench$i" "$user_password" >>"$BENCH_WORK/tokens.txt"
done

if [ -n "${BENCH_ENVHUB_BIN:-}" ]; then
    versions="envhub $bin"
else
    # Read-only git (no index refresh): others may be committing in this work tree.
    versions="envhub at $(git -C "$REPO_ROOT" log -1 --format='%h "%s"' 2>/dev/null || echo '?')"
    if [ -n "$(git -C "$REPO_ROOT" --no-optional-locks status --porcelain --untracked-files=all -- Sources Package.swift 2>/dev/null)" ]; then
        versions+=" (+ uncommitted changes in Sources/ or Package.swift)"
    fi
fi
versions+=", python $("$python" -c 'import platform; print(platform.python_version())') with websockets $("$python" -c 'import websockets; print(websockets.__version__)')"
[ "${BENCH_CHAT_UVLOOP:-1}" = 1 ] && versions+=" on uvloop $("$python" -c 'import uvloop; print(uvloop.__version__)')"
versions+=", $(nproc) CPUs shared by the hub and the clients"
log "$versions; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "$versions" >"$BENCH_WORK/out/versions.txt"

# client MODE ARGS...: run chat_bench.py in its own session (stopped on exit with its workers).
client() {
    local mode=$1; shift
    setsid "$python" "$BENCH_CHAT_DIR/chat_bench.py" "$mode" --url "ws://127.0.0.1:$envhub_port/api/chat" \
        --room "$room" --tokens "$BENCH_WORK/tokens.txt" --out "$BENCH_WORK/out" --hub-pid "$envhub_pid" "$@" </dev/null &
    client_pid=$!
    local status=0
    wait "$client_pid" || status=$?
    client_pid=""
    return "$status"
}

status=0
if measures live; then
    log "live: $BENCH_CHAT_SUBSCRIBERS subscribers over $BENCH_CHAT_CLIENT_PROCS processes ($BENCH_CHAT_CLIENT, nice $BENCH_CHAT_CLIENT_NICE), ${BENCH_CHAT_RATE}/s for ${BENCH_CHAT_DURATION}s"
    client live --sender-token "$admin_token" --subscribers "$BENCH_CHAT_SUBSCRIBERS" \
        --procs "$BENCH_CHAT_CLIENT_PROCS" --rate "$BENCH_CHAT_RATE" --duration "$BENCH_CHAT_DURATION" \
        --drain "$BENCH_CHAT_DRAIN" --nice "$BENCH_CHAT_CLIENT_NICE" "${client_c_args[@]}" \
        || { log "live: the client failed"; status=1; }
fi

if measures idle; then
    # A fresh process, so that memory the live sockets left to the allocator does not hide the
    # idle sockets' cost.
    if measures live; then
        stop_bg "$envhub_pid"
        start_envhub envhub-idle.log
    fi
    log "idle: $BENCH_CHAT_IDLE sockets (subscribed: $BENCH_CHAT_IDLE_SUBSCRIBE) over $BENCH_CHAT_CLIENT_PROCS processes (after $BENCH_CHAT_IDLE_WARMUP warm-up sockets)"
    idle_args=(--connections "$BENCH_CHAT_IDLE" --procs "$BENCH_CHAT_CLIENT_PROCS" --warmup "$BENCH_CHAT_IDLE_WARMUP")
    [ "$BENCH_CHAT_IDLE_SUBSCRIBE" = 1 ] || idle_args+=(--no-subscribe)
    client idle "${idle_args[@]}" || { log "idle: the client failed"; status=1; }
fi

# --- Report -----------------------------------------------------------------------------------
printf '%s users, their tokens shared by the sockets in turn\n' "$BENCH_CHAT_USERS" >>"$BENCH_WORK/out/versions.txt"
python3 "$BENCH_CHAT_DIR/report.py" "$BENCH_WORK/out" || status=1
saved="$REPO_ROOT/bench/out/chat-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$saved"
cp "$BENCH_WORK"/out/*.json "$BENCH_WORK/out/versions.txt" "$saved/" 2>/dev/null || true
log "raw results: $saved"
exit "$status"
