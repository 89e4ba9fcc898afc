#!/usr/bin/env bash
# Gateway benchmark: envhub's /u/{user}/{project}/ proxy beside nginx and
# configurable-http-proxy (CHP), and beside no proxy at all, in one run on 127.0.0.1,
# against the same upstreams (three environments that envhub itself runs):
#
#   hello   `envhub workload hello`, GET / -> small JSON
#   stream  Tests/Support/gateway-test-app.py, GET /bytes?n=N streams N bytes
#   echo    bench/gateway/ws_echo.py, a Python `websockets` echo server
#
# Each reached four ways: direct (the upstream's own port), envhub (Bearer token),
# nginx (proxy_pass, HTTP/1.1 keep-alive to the upstreams, WebSocket upgrade headers)
# and CHP (routes added through its REST API). Measured:
#
#   wrk      wrk -t2 -c64 -d15s --latency GET hello: requests/s, p50, p99
#   wrk1     the same with one connection (-t1 -c1 -d10s): latency without queueing
#   paced    64 connections again, each pausing at random between requests so that together
#            they offer BENCH_PACED_RATE requests/s (paced.lua): the latency a proxy adds
#            under concurrency on a machine that is not saturated (p50, p99)
#   download 1 GiB from stream with curl, 7 runs interleaved: MB/s (median, and round by round)
#   ws       WebSocket echo round trips on one connection: p50, p99
#   hold     1,000 WebSockets held 60 s, each echoing a message every 5 s: errors,
#            and the proxy's RSS (VmRSS) before, once open, at the end, 10 s after closing
#   count    envhub only, and only when asked for (not in the default set): the work per
#            forwarded small GET, counted rather than timed: calls of malloc, swift_retain and
#            swift_release per call of GatewayByteProxy.finishAnswer (once per request), with
#            uprobes (`perf probe`) during 10 s of wrk. Exact where requests/s on these VMs
#            moves by a fifth between identical runs; the probes slow envhub down tenfold
#            meanwhile, so no rate is reported. Needs root (installs linux-perf).
#            With BENCH_COUNT_CALLERS=N, also N lines of where those calls come from:
#            3 s more of wrk under `perf record --call-graph dwarf` on the same probes,
#            each event's first caller outside the Swift runtime, per request (demangled).
#
# then prints a table and the ratios the targets are about (envhub >= 1x nginx and
# >= 3x CHP requests/s; p99 overhead over direct <= 1 ms; streaming >= 80% of direct;
# 0 errors). Raw results are saved under bench/out/.
#
# Environment:
#   BENCH_DURATION=15s, BENCH_RUNS=1, BENCH_WARMUP=2s, BENCH_THREADS=2,
#   BENCH_CONNECTIONS=64     wrk, as in bench/api (medians over BENCH_RUNS; the runs of
#                            wrk and paced go round the targets, each after a warm-up)
#   BENCH_DOWNLOAD_BYTES=1073741824, BENCH_DOWNLOAD_RUNS=7
#   BENCH_WS_ROUNDTRIPS=5000 echo round trips measured (after 500 unrecorded)
#   BENCH_WS_CONNECTIONS=1000, BENCH_WS_HOLD=60   the hold test; seconds held
#   BENCH_ONLY=direct,envhub,nginx,chp            targets (direct is the baseline); add
#                            floor for bench/gateway/floor, a reference for the small GETs
#                            only (wrk, wrk1, paced): what a proxy in Swift costs on epoll
#                            threads of its own; splice and copy for the relays of
#                            bench/gateway/splice, references for the download only: a TCP
#                            relay that moves bytes with splice(2), and the same with read/write
#   BENCH_WRK1_DURATION=10s  the one-connection wrk run
#   BENCH_PACED_RATE=5000    requests/s the paced run offers (below what every target but
#                            CHP serves on the machines this was measured on)
#   BENCH_MEASURE=wrk,wrk1,paced,download,ws,hold measurements (add count for the uprobe counts)
#   BENCH_COUNT_CALLERS=0    with count: print this many (call, caller) lines per request
#   BENCH_CLIENT=api         the requests' fields: api (the token in Authorization) or browser
#                            (a page request's fields as Chromium sends them, the session cookie
#                            with an app's cookie)
#   BENCH_REBUILD=1          rebuild .build/release/envhub even if it exists
#   BENCH_ENVHUB_BIN=path    benchmark this envhub binary instead (no build)
#   BENCH_START_TIMEOUT=90   seconds a server or environment gets to become ready
#   BENCH_KEEP=1             keep the temp dir (logs, configs, wrk outputs)
#
# Setup is done here and is idempotent (root for the apt step): apt packages wrk,
# curl, nginx, node-configurable-http-proxy; a venv with `websockets` from PyPI in
# .build/bench-gateway; the release build of envhub.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../api/lib.sh
. "$(dirname "$0")/../api/lib.sh"
BENCH_GATEWAY_DIR="$REPO_ROOT/bench/gateway"

BENCH_WRK1_DURATION="${BENCH_WRK1_DURATION:-10s}"
export BENCH_PACED_RATE="${BENCH_PACED_RATE:-5000}"  # read by paced.lua, with BENCH_CONNECTIONS
BENCH_DOWNLOAD_BYTES="${BENCH_DOWNLOAD_BYTES:-1073741824}"
BENCH_DOWNLOAD_RUNS="${BENCH_DOWNLOAD_RUNS:-7}"  # downloads move by a third from one to the next here
BENCH_WS_ROUNDTRIPS="${BENCH_WS_ROUNDTRIPS:-5000}"
BENCH_WS_CONNECTIONS="${BENCH_WS_CONNECTIONS:-1000}"
BENCH_WS_HOLD="${BENCH_WS_HOLD:-60}"

# --- What to run -----------------------------------------------------------------
targets=() measurements=()
IFS=',' read -r -a wanted <<<"${BENCH_ONLY:-direct,envhub,nginx,chp}"
for t in "${wanted[@]}"; do
    case "$t" in
        direct|envhub|nginx|chp|floor|splice|copy) targets+=("$t") ;;
        "") ;;
        *) die "unknown BENCH_ONLY entry '$t' (direct, envhub, nginx, chp, floor, splice, copy)" ;;
    esac
done
IFS=',' read -r -a wanted <<<"${BENCH_MEASURE:-wrk,wrk1,paced,download,ws,hold}"
for m in "${wanted[@]}"; do
    case "$m" in
        wrk|wrk1|paced|download|ws|hold|count) measurements+=("$m") ;;
        "") ;;
        *) die "unknown BENCH_MEASURE entry '$m' (wrk, wrk1, paced, download, ws, hold, count)" ;;
    esac
done
if [ ${#targets[@]} -eq 0 ] || [ ${#measurements[@]} -eq 0 ]; then die "BENCH_ONLY or BENCH_MEASURE selects nothing"; fi
wants() { [[ " ${targets[*]} " == *" $1 "* ]]; }
measures() { [[ " ${measurements[*]} " == *" $1 "* ]]; }
# serves TARGET MEASUREMENT: the references take part only in what they were made for.
serves() {
    case "$1" in
        floor) [[ "$2" == wrk || "$2" == wrk1 || "$2" == paced ]] ;;
        splice|copy) [ "$2" = download ] ;;
        *) true ;;
    esac
}

# --- Setup (each step is skipped when already done) -------------------------------
apt_updated=0
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "need root to apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" = 0 ]; then apt-get update -q >&2; apt_updated=1; fi
    apt-get install -y -q "$@" >&2
}

chp_js=/usr/share/nodejs/configurable-http-proxy/bin/configurable-http-proxy
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v wrk >/dev/null || missing+=(wrk)
if wants nginx && [ ! -x /usr/sbin/nginx ]; then missing+=(nginx); fi
if wants chp && [ ! -f "$chp_js" ]; then missing+=(node-configurable-http-proxy); fi
if measures count && ! command -v perf >/dev/null; then missing+=(linux-perf); fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi
command -v python3 >/dev/null || die "python3 is required"

# The WebSocket server and client; in .build/, like scripts/python-tools.sh's venv.
venv="$REPO_ROOT/.build/bench-gateway"
if [ ! -f "$venv/.installed-websockets" ]; then
    log "creating $venv with websockets from PyPI"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        apt_install python3-venv  # Debian's python3 ships venv support separately
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check websockets >&2
    touch "$venv/.installed-websockets"
fi
python="$venv/bin/python"

bin="${BENCH_ENVHUB_BIN:-$REPO_ROOT/.build/release/envhub}"
if [ -z "${BENCH_ENVHUB_BIN:-}" ] && { [ ! -x "$bin" ] || [ "${BENCH_REBUILD:-0}" = 1 ]; }; then
    log "building envhub (swift build -c release --product envhub)"
    (cd "$REPO_ROOT" && swift build -c release --product envhub) >&2
fi
[ -x "$bin" ] || die "$bin missing"
floor_bin="$REPO_ROOT/.build/bench-gateway-floor"
if wants floor; then
    log "building bench/gateway/floor (swiftc -O)"
    swiftc -O -import-objc-header "$BENCH_GATEWAY_DIR/floor/epoll.h" "$BENCH_GATEWAY_DIR/floor/main.swift" -o "$floor_bin" >&2
fi
relay_bin="$REPO_ROOT/.build/bench-gateway-relay"
if wants splice || wants copy; then
    log "building bench/gateway/splice/relay.c (the Swift toolchain's clang -O2)"
    clang -O2 -Wall -Werror "$BENCH_GATEWAY_DIR/splice/relay.c" -o "$relay_bin" -lpthread >&2
fi

# --- Work dir, and stopping everything on exit ----------------------------------------
BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/envhub-bench-gateway.XXXXXX")
BENCH_RESULTS="$BENCH_WORK/wrk.tsv"   # lib.sh's `measure` appends here
: >"$BENCH_RESULTS"
envhub_pid="" nginx_pid="" chp_pid="" floor_pid="" splice_pid="" copy_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop_bg "$floor_pid"
    stop_bg "$splice_pid"
    stop_bg "$copy_pid"
    stop_bg "$chp_pid"
    stop_bg "$nginx_pid"
    stop_bg "$envhub_pid"  # --stop-environments-on-exit: stops the upstreams too
    if measures count; then perf probe -q -d 'envhub_count:*' 2>/dev/null || true; fi
    # Should envhub have needed a KILL, its components (each leading its own process
    # group) are still there: their pid files say where.
    local f pid
    for f in "$BENCH_WORK"/up/*.pid; do
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1,000 WebSockets take 1,000 descriptors in the client and 2,000 in a proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((2 * BENCH_WS_CONNECTIONS + 200)) ] \
    || log "warning: open-file limit $(ulimit -n) is low for $BENCH_WS_CONNECTIONS WebSockets"

# --- envhub and the three upstreams it runs ------------------------------------------
mkdir -p "$BENCH_WORK/templates" "$BENCH_WORK/up" "$BENCH_WORK/envhub-data"
# Each component writes its port (for the direct runs) and its pid (for cleanup), then
# becomes the server: `sh -c SCRIPT PROGRAM ARGS...` runs SCRIPT with $0=PROGRAM, $@=ARGS.
template() {  # template NAME PROGRAM [ARGS...]
    local name=$1 argv; shift
    argv=$(printf ', "%s"' "$@")
    cat >"$BENCH_WORK/templates/bench-$name.yaml" <<EOF
name: bench-$name
title: bench/gateway $name
components:
  - name: app
    command: ["/bin/sh", "-c", "echo \$\$ > \"\$BENCH_UP.pid\"; echo \$PORT > \"\$BENCH_UP.port\"; exec \"\$0\" \"\$@\""$argv]
    image: none
    port: 8080
    env:
      BENCH_UP: "$BENCH_WORK/up/$name"
EOF
}
template hello "{{envhub}}" workload hello
template stream "$python" "$REPO_ROOT/Tests/Support/gateway-test-app.py"
template echo "$python" "$BENCH_GATEWAY_DIR/ws_echo.py"
upstreams=(hello stream echo)

envhub_port=$(free_port)
envhub_base="http://127.0.0.1:$envhub_port"
admin_password="bench-admin-$("$python" -c 'import secrets; print(secrets.token_hex(12))')"
log "starting envhub on :$envhub_port"
start_bg "$BENCH_WORK/envhub.log" env ENVHUB_ADMIN_PASSWORD="$admin_password" \
    ENVHUB_DATA_DIR="$BENCH_WORK/envhub-data" ENVHUB_TEMPLATES_DIR="$BENCH_WORK/templates" \
    "$bin" serve --host 127.0.0.1 --port "$envhub_port" --idle-timeout 0 --stop-environments-on-exit
envhub_pid=$!
wait_http "$envhub_pid" "$envhub_base/readyz" 200 "$BENCH_WORK/envhub.log" || die "envhub did not become ready"

# api METHOD PATH EXPECTED_STATUS [JSON]: call envhub's API, print the response body.
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

token=""
token=$(api POST /api/auth/login 200 "{\"username\":\"admin\",\"password\":\"$admin_password\"}" | json_field token)
for name in "${upstreams[@]}"; do
    api POST /api/users/admin/projects 201 "{\"name\":\"$name\",\"template\":\"bench-$name\"}" >/dev/null
    api POST "/api/users/admin/projects/$name/activate" 202 >/dev/null
done
deadline=$(( $(date +%s) + BENCH_START_TIMEOUT ))
for name in "${upstreams[@]}"; do
    while :; do
        state=$(api GET "/api/users/admin/projects/$name" 200 | json_field state) || die "could not read project $name"
        [ "$state" = active ] && break
        [ "$state" = failed ] && die "environment $name failed to start; see $BENCH_WORK/envhub-data"
        [ "$(date +%s)" -lt "$deadline" ] || die "environment $name not active after ${BENCH_START_TIMEOUT}s (state: $state)"
        sleep 0.05
    done
    [ -s "$BENCH_WORK/up/$name.port" ] || die "environment $name is active but wrote no port"
done
declare -A port
for name in "${upstreams[@]}"; do port[$name]=$(cat "$BENCH_WORK/up/$name.port"); done
log "upstreams active: hello :${port[hello]}, stream :${port[stream]}, echo :${port[echo]}"

# --- nginx -----------------------------------------------------------------------------
node=""
if wants nginx; then
    nginx_port=$(free_port)
    mkdir -p "$BENCH_WORK/nginx/tmp"
    {
        cat <<EOF
worker_processes auto;
worker_rlimit_nofile $(( 4 * BENCH_WS_CONNECTIONS + 1024 ));
pid $BENCH_WORK/nginx/nginx.pid;
error_log $BENCH_WORK/nginx/error.log warn;
events { worker_connections $(( 4 * BENCH_WS_CONNECTIONS + 1024 )); }
http {
    access_log off;
    client_body_temp_path $BENCH_WORK/nginx/tmp/body;
    proxy_temp_path $BENCH_WORK/nginx/tmp/proxy;
    fastcgi_temp_path $BENCH_WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $BENCH_WORK/nginx/tmp/uwsgi;
    scgi_temp_path $BENCH_WORK/nginx/tmp/scgi;
    # Connection: upgrade only when the client asked for one; otherwise an empty
    # Connection header, so the upstream connection stays in the keep-alive pool.
    map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
    # nginx closes a client connection after 1,000 requests by default; envhub and CHP do not.
    keepalive_requests 1000000;
EOF
        for name in "${upstreams[@]}"; do
            printf '    upstream %s { server 127.0.0.1:%s; keepalive 64; keepalive_requests 1000000; }\n' "$name" "${port[$name]}"
        done
        cat <<EOF
    server {
        listen 127.0.0.1:$nginx_port backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Host \$http_host;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$connection_upgrade;
        proxy_set_header X-Forwarded-For \$remote_addr;
        proxy_set_header X-Forwarded-Proto \$scheme;
        # Stream through memory buffers with back-pressure, never into a temp file; 64 KiB
        # buffers (the default is 4 or 8 KiB, which halves nginx's streaming rate here).
        proxy_max_temp_file_size 0;
        proxy_buffer_size 64k;
        proxy_buffers 8 64k;
        proxy_busy_buffers_size 128k;
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
EOF
        for name in "${upstreams[@]}"; do
            printf '        location /u/admin/%s/ { proxy_pass http://%s/; }\n' "$name" "$name"
        done
        printf '    }\n}\n'
    } >"$BENCH_WORK/nginx/nginx.conf"
    log "starting nginx on :$nginx_port"
    start_bg "$BENCH_WORK/nginx/stdout.log" /usr/sbin/nginx -p "$BENCH_WORK/nginx" -e "$BENCH_WORK/nginx/error.log" \
        -c "$BENCH_WORK/nginx/nginx.conf" -g 'daemon off;'
    nginx_pid=$!
    wait_http "$nginx_pid" "http://127.0.0.1:$nginx_port/u/admin/hello/" 200 "$BENCH_WORK/nginx/error.log" \
        || die "nginx did not start"
fi

# --- configurable-http-proxy --------------------------------------------------------------
if wants chp; then
    # Debian's CHP, run with Debian's node and modules whatever `node` is first on PATH
    # (as bench/api/jupyterhub.sh does).
    for n in /usr/bin/node /usr/bin/nodejs; do [ -x "$n" ] && { node=$n; break; }; done
    [ -n "$node" ] || die "no /usr/bin/node or /usr/bin/nodejs (apt-get install nodejs)"
    chp_port=$(free_port)
    chp_api_port=$(free_port)
    chp_token=$("$python" -c 'import secrets; print(secrets.token_hex(32))')
    log "starting configurable-http-proxy on :$chp_port (API :$chp_api_port)"
    # --no-include-prefix: like envhub and the nginx config, strip /u/admin/NAME.
    start_bg "$BENCH_WORK/chp.log" env NODE_PATH=/usr/share/nodejs CONFIGPROXY_AUTH_TOKEN="$chp_token" \
        "$node" "$chp_js" --ip 127.0.0.1 --port "$chp_port" --api-ip 127.0.0.1 --api-port "$chp_api_port" \
        --no-include-prefix --log-level warn
    chp_pid=$!
    wait_http "$chp_pid" "http://127.0.0.1:$chp_api_port/api/routes" 200 "$BENCH_WORK/chp.log" \
        -H "Authorization: token $chp_token" || die "configurable-http-proxy did not start"
    for name in "${upstreams[@]}"; do
        code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: token $chp_token" \
            --data "{\"target\": \"http://127.0.0.1:${port[$name]}\"}" "http://127.0.0.1:$chp_api_port/api/routes/u/admin/$name")
        [ "$code" = 201 ] || die "CHP did not take the route for $name (HTTP $code)"
    done
    wait_http "$chp_pid" "http://127.0.0.1:$chp_port/u/admin/hello/" 200 "$BENCH_WORK/chp.log" || die "CHP does not route"
fi

# --- the floor: hello only, one epoll thread per CPU --------------------------------------
if wants floor; then
    floor_port=$(free_port)
    log "starting bench/gateway/floor on :$floor_port"
    start_bg "$BENCH_WORK/floor.log" "$floor_bin" "$floor_port" "${port[hello]}" /u/admin/hello "$(nproc)"
    floor_pid=$!
    wait_http "$floor_pid" "http://127.0.0.1:$floor_port/u/admin/hello/" 200 "$BENCH_WORK/floor.log" || die "the floor proxy did not start"
fi

# --- the relays: stream only, bytes relayed over TCP (no HTTP, so no prefix) ------------------
for relay in splice copy; do
    wants "$relay" || continue
    relay_port=$(free_port)
    log "starting bench/gateway/splice/relay ($relay) on :$relay_port"
    start_bg "$BENCH_WORK/$relay.log" "$relay_bin" "$relay_port" "${port[stream]}" "$relay"
    printf -v "${relay}_pid" '%s' "$!"
    printf -v "${relay}_port" '%s' "$relay_port"
    wait_http "$!" "http://127.0.0.1:$relay_port/health" 200 "$BENCH_WORK/$relay.log" || die "the $relay relay did not start"
done

# --- Where each target reaches each upstream ------------------------------------------------
declare -A base pids
for t in "${targets[@]}"; do
    case "$t" in
        direct) base[$t]="" ;;  # per upstream, below
        envhub) base[$t]="127.0.0.1:$envhub_port/u/admin"; pids[$t]=$envhub_pid ;;
        nginx)  base[$t]="127.0.0.1:$nginx_port/u/admin"  # RSS: the master and its workers
                pids[$t]=$(pgrep -P "$nginx_pid" | tr '\n' ',')$nginx_pid ;;
        chp)    base[$t]="127.0.0.1:$chp_port/u/admin"; pids[$t]=$chp_pid ;;
        floor)  base[$t]="127.0.0.1:$floor_port/u/admin"; pids[$t]=$floor_pid ;;
        splice) base[$t]="127.0.0.1:$splice_port"; pids[$t]=$splice_pid ;;
        copy)   base[$t]="127.0.0.1:$copy_port"; pids[$t]=$copy_pid ;;
    esac
done
address() {  # address TARGET UPSTREAM: host:port/prefix without a trailing slash
    case "$1" in
        direct) echo "127.0.0.1:${port[$2]}" ;;
        splice|copy) echo "${base[$1]}" ;;  # stream's port, relayed as it is
        *) echo "${base[$1]}/$2" ;;
    esac
}
# Every target gets the same request bytes; only envhub looks at the token. An API client
# sends it alone; a browser sends it as the session cookie, with a cookie of the app's and the
# fields Chromium sends with a page request.
case "${BENCH_CLIENT:-api}" in
    api) request_headers=("Authorization: Bearer $token") ;;
    browser) request_headers=(
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
        "Accept-Encoding: gzip, deflate, br"
        "Accept-Language: en-US,en;q=0.9"
        "Connection: keep-alive"
        "Referer: http://127.0.0.1/u/admin/hello/"
        "Sec-Fetch-Dest: document"
        "Sec-Fetch-Mode: navigate"
        "Sec-Fetch-Site: same-origin"
        "Cookie: envhub_session=$token; app_theme=dark") ;;
    *) die "BENCH_CLIENT must be api or browser" ;;
esac
header_options=() ws_header_options=()  # -H for curl and wrk, --header for ws_bench.py
for field in "${request_headers[@]}"; do header_options+=(-H "$field"); ws_header_options+=(--header "$field"); done

if [ -n "${BENCH_ENVHUB_BIN:-}" ]; then
    versions="envhub $bin"
else
    # Read-only git (no index refresh): others may be committing in this work tree.
    versions="envhub at $(git -C "$REPO_ROOT" log -1 --format='%h "%s"' 2>/dev/null || echo '?')"
    if [ -n "$(git -C "$REPO_ROOT" --no-optional-locks status --porcelain --untracked-files=all -- Sources 2>/dev/null)" ]; then
        versions+=" (+ uncommitted changes in Sources/)"
    fi
fi
wants nginx && versions+=", $(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //')"
wants chp && versions+=", configurable-http-proxy $(NODE_PATH=/usr/share/nodejs "$node" "$chp_js" --version) on node $("$node" --version)"
versions+=", python websockets $("$python" -c 'import websockets; print(websockets.__version__)')"
log "$versions"
log "targets: ${targets[*]}; measurements: ${measurements[*]}; $(nproc) CPUs shared by clients, proxies and upstreams; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "$versions" >"$BENCH_WORK/versions.txt"

# Check once that every target answers what we think it answers.
for t in "${targets[@]}"; do
    serves "$t" wrk || continue
    curl -sf --noproxy '*' "${header_options[@]}" "http://$(address "$t" hello)/" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
assert "message" in doc, doc
print(f"    {sys.argv[1]}: GET hello/ -> {json.dumps(doc)}", file=sys.stderr)
' "$t" || die "$t: unexpected answer from hello"
done

# --- Measurements -----------------------------------------------------------------------------
# CPU seconds (user + system) used so far by the comma-separated PIDS; "-" without pids.
cpu_seconds() {
    local pid stat total=0
    [ -n "$1" ] || { echo -; return; }
    for pid in ${1//,/ }; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        read -r -a stat <<<"${stat##*) }"  # fields from the 3rd (state) on; utime, stime are 14, 15
        total=$((total + stat[11] + stat[12]))
    done
    awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}
# The machine's idle and total CPU time so far, in ticks: "IDLE TOTAL".
machine_ticks() { awk '$1 == "cpu" {t = 0; for (i = 2; i <= NF; i++) t += $i; print $5 + $6, t; exit}' /proc/stat; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-") print "-"; else printf "%.2f", b - a}'; }

# The wrk runs go round the targets (run 1 of each, then run 2 of each...), so that the
# machine's drift over minutes, which moves every target's rate by a fifth or more on these
# VMs, hits every target alike instead of whichever ran in the slow minutes.
if measures wrk; then
    : >"$BENCH_WORK/wrk-cpu.tsv"
    for run in $(seq "$BENCH_RUNS"); do
        for t in "${targets[@]}"; do
            serves "$t" wrk || continue
            cpu_before=$(cpu_seconds "${pids[$t]:-}") began=$(date +%s.%N) machine_before=$(machine_ticks)
            BENCH_RUN=$run measure "$t" "http://$(address "$t" hello)/" "${request_headers[@]}"
            # The proxy's CPU over the warm-up and the run (in seconds, with the wall time they
            # took), and the share of the machine's CPU time nobody used meanwhile.
            printf '%s\t%s\t%s\t%s\n' "$t" "$(elapsed "$cpu_before" "$(cpu_seconds "${pids[$t]:-}")")" \
                "$(elapsed "$began" "$(date +%s.%N)")" \
                "$(echo "$machine_before $(machine_ticks)" | awk '{printf "%.3f", ($3 - $1) / ($4 - $2)}')" \
                >>"$BENCH_WORK/wrk-cpu.tsv"
        done
    done
fi

if measures wrk1; then
    for t in "${targets[@]}"; do
        serves "$t" wrk1 || continue
        BENCH_THREADS=1 BENCH_CONNECTIONS=1 BENCH_RUNS=1 BENCH_DURATION=$BENCH_WRK1_DURATION \
            BENCH_RESULTS="$BENCH_WORK/wrk1.tsv" measure "$t-c1" "http://$(address "$t" hello)/" "${request_headers[@]}"
    done
fi

if measures paced; then
    export BENCH_CONNECTIONS
    for run in $(seq "$BENCH_RUNS"); do
        for t in "${targets[@]}"; do
            serves "$t" paced || continue
            BENCH_RUN=$run BENCH_WRK_SCRIPT="$BENCH_GATEWAY_DIR/paced.lua" BENCH_RESULTS="$BENCH_WORK/paced.tsv" \
                measure "$t-paced" "http://$(address "$t" hello)/" "${request_headers[@]}"
        done
    done
fi

if measures download; then
    : >"$BENCH_WORK/download.tsv"
    for run in $(seq "$BENCH_DOWNLOAD_RUNS"); do
        for t in "${targets[@]}"; do  # interleaved, so drift hits every target alike
            serves "$t" download || continue
            url="http://$(address "$t" stream)/bytes?n=$BENCH_DOWNLOAD_BYTES"
            cpu_before=$(cpu_seconds "${pids[$t]:-}")
            read -r code size speed < <(curl -s --noproxy '*' --max-time 600 "${header_options[@]}" -o /dev/null \
                -w '%{http_code} %{size_download} %{speed_download}\n' "$url" || echo "000 0 0")
            ok=1
            [ "$code" = 200 ] && [ "$size" = "$BENCH_DOWNLOAD_BYTES" ] || ok=0
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$run" "$speed" "$ok" "$size" \
                "$(elapsed "$cpu_before" "$(cpu_seconds "${pids[$t]:-}")")" >>"$BENCH_WORK/download.tsv"
            log "$t: download $run/$BENCH_DOWNLOAD_RUNS: $(awk -v s="$speed" 'BEGIN {printf "%.0f", s / 1e6}') MB/s (HTTP $code, $size bytes)"
        done
    done
fi

if measures ws; then
    : >"$BENCH_WORK/ws.tsv"
    for t in "${targets[@]}"; do
        serves "$t" ws || continue
        log "$t: $BENCH_WS_ROUNDTRIPS WebSocket echo round trips"
        "$python" "$BENCH_GATEWAY_DIR/ws_bench.py" latency "$t" "ws://$(address "$t" echo)/" \
            --count "$BENCH_WS_ROUNDTRIPS" "${ws_header_options[@]}" >>"$BENCH_WORK/ws.tsv" \
            || printf '%s\tFAILED\n' "$t" >>"$BENCH_WORK/ws.tsv"
        tail -n 1 "$BENCH_WORK/ws.tsv" | awk -F'\t' '$2 != "FAILED" {printf "    p50 %s ms, p99 %s ms\n", $2, $3}' >&2
    done
fi

if measures hold; then
    : >"$BENCH_WORK/hold.tsv"
    for t in "${targets[@]}"; do
        serves "$t" hold || continue
        log "$t: $BENCH_WS_CONNECTIONS WebSockets held ${BENCH_WS_HOLD}s"
        "$python" "$BENCH_GATEWAY_DIR/ws_bench.py" hold "$t" "ws://$(address "$t" echo)/" \
            --connections "$BENCH_WS_CONNECTIONS" --seconds "$BENCH_WS_HOLD" --pids "${pids[$t]:-}" \
            "${ws_header_options[@]}" >>"$BENCH_WORK/hold.tsv" \
            || printf '%s\t%s\t%s\tFAILED\n' "$t" "$BENCH_WS_CONNECTIONS" "$BENCH_WS_HOLD" >>"$BENCH_WORK/hold.tsv"
        tail -n 1 "$BENCH_WORK/hold.tsv" | awk -F'\t' '{printf "    errors %s\n", $4}' >&2
    done
fi

if measures count && wants envhub; then
    # The per-request probe: finishAnswer itself, not one of its closures (longer names).
    per_request=$(perf probe -x "$bin" --funcs 2>/dev/null | grep -E '^\$s12EnvHubServer16GatewayByteProxyC12finishAnswer' \
        | awk '{print length, $0}' | sort -n | head -n 1 | cut -d' ' -f2-)
    [ -n "$per_request" ] || die "count: no GatewayByteProxy.finishAnswer symbol in $bin"
    swift_core=$(ldd "$bin" | awk '/libswiftCore\.so/ {print $3}')
    libc=$(ldd "$bin" | awk '/libc\.so\.6/ {print $3}')
    perf probe -q -d 'envhub_count:*' 2>/dev/null || true
    perf probe -q -x "$libc" -a "envhub_count:malloc=malloc" \
        && perf probe -q -x "$swift_core" -a "envhub_count:retain=swift_retain" \
        && perf probe -q -x "$swift_core" -a "envhub_count:release=swift_release" \
        && perf probe -q -x "$bin" -a "envhub_count:request=$per_request" 2>/dev/null \
        || die "count: perf probe failed (root, and a kernel with uprobes, are needed)"
    # With BENCH_WRK_SCRIPT (mixed.lua, say), the requests it sends; the counts are per
    # request the byte path answers, so what the others cost is spread over those.
    count_script=()
    if [ -n "${BENCH_WRK_SCRIPT:-}" ]; then count_script=(-s "$BENCH_WRK_SCRIPT"); fi
    log "envhub: counting mallocs, retains and releases per request (uprobes, 10 s of wrk)"
    wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d14s "${header_options[@]}" "${count_script[@]}" "http://$(address envhub hello)/" >/dev/null 2>&1 &
    wrk_pid=$!
    sleep 2  # connections open and pooled: the counted requests are the steady state
    perf stat -x, -e envhub_count:malloc,envhub_count:retain,envhub_count:release,envhub_count:request \
        -p "$envhub_pid" -o "$BENCH_WORK/count.csv" -- sleep 10
    wait "$wrk_pid" || true
    if [ "${BENCH_COUNT_CALLERS:-0}" -gt 0 ]; then
        log "envhub: recording the callers of those calls (3 s of wrk, perf record --call-graph dwarf)"
        wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d6s "${header_options[@]}" "${count_script[@]}" "http://$(address envhub hello)/" >/dev/null 2>&1 &
        wrk_pid=$!
        sleep 2
        perf record -q --call-graph dwarf,16384 -o "$BENCH_WORK/callers.data" \
            -e envhub_count:malloc,envhub_count:retain,envhub_count:release,envhub_count:request \
            -p "$envhub_pid" -- sleep 3 2>/dev/null
        wait "$wrk_pid" || true
        # perf script: a line naming the event, then the stack, innermost frame first; the
        # caller is the first frame outside the runtime (swift_allocObject calls malloc).
        perf script -i "$BENCH_WORK/callers.data" -F event,ip,sym --no-inline 2>/dev/null | awk '
            /^ *envhub_count:/ {event = $1; sub("envhub_count:", "", event); sub(":", "", event); depth = 0; found = 0; next}
            NF == 0 {next}
            {depth++}
            depth == 1 && event == "request" {requests++}
            depth >= 2 && !found && $2 !~ /^_*swift_/ {calls[event "\t" $2]++; total[event]++; found = 1}
            END {if (requests == 0) {print "    recorded no request (perf lost them all)" > "/dev/stderr"; exit}
                 printf "    recorded %d requests: %.1f malloc, %.1f swift_retain, %.1f swift_release per request; their callers:\n",
                     requests, total["malloc"] / requests, total["retain"] / requests, total["release"] / requests > "/dev/stderr"
                 for (k in calls) if (k !~ /^request/) printf "%.1f\t%s\n", calls[k] / requests, k}' \
            | sort -rn | head -n "$BENCH_COUNT_CALLERS" | swift demangle --simplified | cut -c1-160 \
            | awk -F'\t' '{printf "    %6s per request  %-8s %s\n", $1, $2, $3}' >&2
    fi
    perf probe -q -d 'envhub_count:*' 2>/dev/null || true
    # perf stat -x, lines: count,unit,event,...
    awk -F, '$3 ~ /^envhub_count:/ {sub("envhub_count:", "", $3); n[$3] = $1}
        END {printf "envhub\t%s\t%s\t%s\t%s\n", n["request"], n["malloc"], n["retain"], n["release"]}' \
        "$BENCH_WORK/count.csv" >"$BENCH_WORK/count.tsv"
    awk -F'\t' '$2 > 0 {printf "    %d requests: %.1f malloc, %.1f swift_retain, %.1f swift_release per request\n", $2, $3 / $2, $4 / $2, $5 / $2}' \
        "$BENCH_WORK/count.tsv" >&2
fi

# --- Report -----------------------------------------------------------------------------------
status=0
python3 "$BENCH_GATEWAY_DIR/report.py" "$BENCH_WORK" || status=1
saved="$REPO_ROOT/bench/out/gateway-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$saved"
cp "$BENCH_WORK"/*.tsv "$BENCH_WORK/versions.txt" "$saved/"
cp -r "$BENCH_WORK/wrk" "$saved/" 2>/dev/null || true
log "raw results: $saved"
exit "$status"
