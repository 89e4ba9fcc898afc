#!/usr/bin/env bash
# API benchmark: envhub vs JupyterHub, side by side, on 127.0.0.1.
#
#   envhub      GET /api/users/bench/projects   (Bearer token, user with 50 projects)
#               once on SQLite (default store), once on PostgreSQL
#   JupyterHub  GET /hub/api/users/bench         (service API token)
#
# each with `wrk -t2 -c64 -d15s --latency`; prints requests/s, p99 latency, the
# envhub/JupyterHub requests/s ratio, and the goals (>= 30x, p99 < 5 ms).
#
# Environment:
#   BENCH_DURATION=15s     wrk duration per run (e.g. 5s for a smoke run)
#   BENCH_RUNS=1           runs per target; the summary quotes medians
#   BENCH_ONLY=...         comma list of jupyterhub, envhub-sqlite, envhub-postgres
#                          (envhub = both envhub ones); default: all three
#   BENCH_REBUILD=1        rebuild .build/release/envhub even if it exists
#   BENCH_ENVHUB_BIN=path  benchmark this envhub binary instead (no build)
#   BENCH_JUPYTERHUB_VIA=hub,proxy   measure JupyterHub on the hub's own port
#                          and/or its public URL (through configurable-http-proxy);
#                          ratios use the faster of the two
#   BENCH_WARMUP=2s, BENCH_THREADS=2, BENCH_CONNECTIONS=64, BENCH_START_TIMEOUT=90
#   BENCH_KEEP=1           keep the temp dir (server logs, wrk outputs)
#
# Setup is done here and is idempotent: apt packages wrk and
# node-configurable-http-proxy, a venv with JupyterHub in bench/.venv, and the
# release build of envhub. Results are also saved under bench/out/.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# --- What to run -----------------------------------------------------------------
targets=()
IFS=',' read -r -a wanted <<<"${BENCH_ONLY:-jupyterhub,envhub-sqlite,envhub-postgres}"
for t in "${wanted[@]}"; do
    case "$t" in
        jupyterhub|envhub-sqlite|envhub-postgres) targets+=("$t") ;;
        envhub) targets+=(envhub-sqlite envhub-postgres) ;;
        "") ;;
        *) die "unknown BENCH_ONLY entry '$t' (jupyterhub, envhub, envhub-sqlite, envhub-postgres)" ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || die "BENCH_ONLY selects nothing"
wants() { [[ " ${targets[*]} " == *" $1 "* ]]; }
wants_envhub() { wants envhub-sqlite || wants envhub-postgres; }

# --- Setup (each step is skipped when already done) -------------------------------
apt_updated=0
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "need root to apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" = 0 ]; then apt-get update -q >&2; apt_updated=1; fi
    apt-get install -y -q "$@" >&2
}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if wants jupyterhub && [ ! -f /usr/share/nodejs/configurable-http-proxy/bin/configurable-http-proxy ]; then
    missing+=(node-configurable-http-proxy)
fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi
command -v python3 >/dev/null || die "python3 is required"

venv="$REPO_ROOT/bench/.venv"
if wants jupyterhub && ! "$venv/bin/python" -c 'import jupyterhub' 2>/dev/null; then
    log "creating $venv with JupyterHub from PyPI"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian's own python3 ships venv support separately.
        apt_install python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --upgrade pip >&2
    "$venv/bin/pip" install -q jupyterhub >&2
fi

if wants_envhub && [ -z "${BENCH_ENVHUB_BIN:-}" ]; then
    if [ ! -x "$REPO_ROOT/.build/release/envhub" ] || [ "${BENCH_REBUILD:-0}" = 1 ]; then
        log "building envhub (swift build -c release --product envhub)"
        (cd "$REPO_ROOT" && swift build -c release --product envhub) >&2
    fi
fi

# --- Run -----------------------------------------------------------------------------
BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/envhub-bench-api.XXXXXX")
BENCH_RESULTS="$BENCH_WORK/results.tsv"
export BENCH_WORK BENCH_RESULTS BENCH_DURATION BENCH_RUNS BENCH_WARMUP BENCH_THREADS \
    BENCH_CONNECTIONS BENCH_START_TIMEOUT
: >"$BENCH_RESULTS"
cleanup() {  # shellcheck disable=SC2317  # run by the EXIT trap
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "targets: ${targets[*]}; wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS -d$BENCH_DURATION x $BENCH_RUNS; $(nproc) CPUs shared by wrk and the server; load average $(cut -d" " -f1-3 /proc/loadavg)"
failed=()
for t in "${targets[@]}"; do
    case "$t" in
        jupyterhub)      "$BENCH_API_DIR/jupyterhub.sh" || failed+=("$t") ;;
        envhub-sqlite)   "$BENCH_API_DIR/envhub.sh" sqlite || failed+=("$t") ;;
        envhub-postgres) "$REPO_ROOT/scripts/with-postgres.sh" "$BENCH_API_DIR/envhub.sh" postgres || failed+=("$t") ;;
    esac
done

# --- Report ----------------------------------------------------------------------------
status=0
if [ -s "$BENCH_RESULTS" ]; then
    python3 "$BENCH_API_DIR/report.py" "$BENCH_RESULTS" || status=1
    mkdir -p "$REPO_ROOT/bench/out"
    saved="$REPO_ROOT/bench/out/api-$(date +%Y%m%d-%H%M%S).tsv"
    cp "$BENCH_RESULTS" "$saved"
    log "raw results: $saved"
fi
if [ ${#failed[@]} -gt 0 ]; then
    log "FAILED: ${failed[*]}"
    status=1
fi
exit "$status"
