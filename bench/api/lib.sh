# Shared helpers for bench/api/*.sh (sourced, not run).
# shellcheck shell=bash

# shellcheck disable=SC2034  # used by the scripts that source this file
BENCH_API_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_API_DIR/../.." && pwd)

BENCH_DURATION="${BENCH_DURATION:-15s}"
BENCH_RUNS="${BENCH_RUNS:-1}"
BENCH_WARMUP="${BENCH_WARMUP:-2s}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
# Seconds a server gets to become ready (JupyterHub + proxy take a few seconds,
# envhub on PostgreSQL runs its migrations first).
BENCH_START_TIMEOUT="${BENCH_START_TIMEOUT:-90}"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A port nobody listens on right now: bind port 0 and let the kernel choose.
# (Racy by nature; servers that fail to start are reported, not retried.)
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Start "$@" in its own session (so we can kill it together with its children,
# e.g. JupyterHub's proxy) with output to $1's log file. Sets $! as usual.
#   start_bg LOGFILE CMD [ARGS...]
start_bg() {
    local logfile=$1; shift
    # Not a process-group leader here (no job control in scripts), so setsid
    # does not fork: the pid we get is the server's and also its group id.
    setsid "$@" </dev/null >"$logfile" 2>&1 &
}

# Stop a process group started with start_bg: TERM, wait up to 10 s, then KILL.
stop_bg() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Poll URL until it answers with HTTP status WANT, the process PID dies, or the
# deadline passes.  wait_http PID URL WANT LOGFILE [curl args...]
wait_http() {
    local pid=$1 url=$2 want=$3 logfile=$4; shift 4
    local deadline=$(( $(date +%s) + BENCH_START_TIMEOUT )) code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" || true)
        [ "$code" = "$want" ] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            log "server exited before $url answered $want; last log lines:"
            tail -n 40 "$logfile" >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "$url not answering $want after ${BENCH_START_TIMEOUT}s (last status: $code); last log lines:"
            tail -n 40 "$logfile" >&2
            return 1
        fi
        sleep 0.2
    done
}

# Run wrk against URL and append one result line per run to $BENCH_RESULTS:
#   label \t run \t requests/s \t p99 ms \t non-2xx \t socket errors \t url
# measure LABEL URL HEADER...
# With BENCH_WRK_SCRIPT set, the recorded runs use that wrk Lua script (the warm-up does not).
# With BENCH_RUN=N set, one recorded run numbered N (for callers that interleave targets).
measure() {
    local label=$1 url=$2 run out script=() runs headers=() header
    shift 2
    for header in "$@"; do headers+=(-H "$header"); done
    runs=$(seq "$BENCH_RUNS")
    if [ -n "${BENCH_RUN:-}" ]; then runs=$BENCH_RUN; fi
    if [ -n "${BENCH_WRK_SCRIPT:-}" ]; then script=(-s "$BENCH_WRK_SCRIPT"); fi
    : "${BENCH_RESULTS:?BENCH_RESULTS must be set}"
    mkdir -p "$BENCH_WORK/wrk"
    # Short unrecorded run first: warms caches, connection pools, JITs.
    log "$label: warm-up ($BENCH_WARMUP)"
    wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"$BENCH_WARMUP" --timeout 5s \
        "${headers[@]}" "$url" >/dev/null 2>&1 || true
    for run in $runs; do
        out="$BENCH_WORK/wrk/$(echo "$label" | tr -c 'A-Za-z0-9\n' '_')-$run.txt"
        log "$label: wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS -d$BENCH_DURATION (run $run/$BENCH_RUNS)"
        wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"$BENCH_DURATION" --timeout 5s --latency "${script[@]}" \
            "${headers[@]}" "$url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
        python3 "$BENCH_API_DIR/parse_wrk.py" "$label" "$run" "$url" <"$out" >>"$BENCH_RESULTS" \
            || { cat "$out" >&2; die "could not parse wrk output"; }
        tail -n 1 "$BENCH_RESULTS" | awk -F'\t' '{printf "    %s req/s, p99 %s ms, non-2xx %s, socket errors %s\n", $3, $4, $5, $6}' >&2
    done
}
