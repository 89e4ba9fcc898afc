# shellcheck shell=bash
# Sourced by the test scripts that drive a running hub: `start_test_hub NAME PASSWORD LOG
# LEVEL [serve options...]` starts .build/debug/envhub on a free port with SQLite in a temp
# dir, writes its output to LOG, waits (60 s at most) until /readyz answers, and sets `port`.
# `{port}` in the serve options stands for that port (`--public-url http://127.0.0.1:{port}`).
# A script may start several. They are stopped and their temp dirs removed when the calling
# script exits.
test_hub_pids=()
test_hub_dirs=()
stop_test_hubs() {
    local pid
    for pid in "${test_hub_pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${test_hub_pids[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "${test_hub_dirs[@]}"
}
trap stop_test_hubs EXIT

start_test_hub() {
    local name=$1 password=$2 log=$3 level=$4
    shift 4
    local binary=.build/debug/envhub
    [ -x "$binary" ] || { echo "$name: build first (swift build)" >&2; exit 2; }
    local dir
    dir=$(mktemp -d)
    test_hub_dirs+=("$dir")
    chmod 755 "$dir"  # the `postgres` user of a `data` environment must reach its volume
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    ENVHUB_ADMIN_PASSWORD=$password ENVHUB_DATA_DIR="$dir/data" ENVHUB_LOG_LEVEL=$level \
        "$binary" serve --port "$port" "${@//\{port\}/$port}" >"$log" 2>&1 &
    test_hub_pids+=($!)
    local deadline=$(( $(date +%s) + 60 ))
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$log" >&2; echo "$name: envhub did not start" >&2; exit 1; }
        sleep 0.1
    done
}
