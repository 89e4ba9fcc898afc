#!/usr/bin/env bash
# Measure envhub's authenticated GET /api/users/bench/projects (50 projects).
#   envhub.sh sqlite     envhub's default SQLite store in a temp data dir
#   envhub.sh postgres   PostgreSQL at $ENVHUB_TEST_DATABASE_URL; run it through
#                        scripts/with-postgres.sh, which sets that variable
# Called by bench/api/run.sh (which sets BENCH_WORK, BENCH_RESULTS and builds
# the binary); not meant to be run on its own.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${BENCH_WORK:?}" "${BENCH_RESULTS:?}"
store=${1:?usage: envhub.sh sqlite|postgres}
bin="${BENCH_ENVHUB_BIN:-$REPO_ROOT/.build/release/envhub}"
[ -x "$bin" ] || die "$bin missing (run bench/api/run.sh, which builds it)"

work="$BENCH_WORK/envhub-$store"
mkdir -p "$work/data"
server_pid=""
trap 'stop_bg "$server_pid"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Never inherit a database URL from the caller's environment by accident.
unset ENVHUB_DATABASE_URL
case "$store" in
    sqlite)   label="envhub (SQLite)" ;;
    postgres)
        : "${ENVHUB_TEST_DATABASE_URL:?run through scripts/with-postgres.sh}"
        export ENVHUB_DATABASE_URL="$ENVHUB_TEST_DATABASE_URL"
        label="envhub (PostgreSQL)" ;;
    *) die "store must be sqlite or postgres" ;;
esac

port=$(free_port)
admin_password="bench-admin-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
base="http://127.0.0.1:$port"

log "starting $label on :$port"
start_bg "$work/envhub.log" env ENVHUB_ADMIN_PASSWORD="$admin_password" ENVHUB_DATA_DIR="$work/data" \
    "$bin" serve --host 127.0.0.1 --port "$port"
server_pid=$!
wait_http "$server_pid" "$base/readyz" 200 "$work/envhub.log" || die "envhub did not become ready"

# POST JSON, insist on the expected status, print the response body.
#   post PATH EXPECTED_STATUS JSON [Bearer-token]
post() {
    local path=$1 want=$2 body=$3 token=${4:-} code
    local -a auth=()
    [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
    code=$(curl -s -o "$work/response.json" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' "${auth[@]}" --data "$body" "$base$path")
    if [ "$code" != "$want" ]; then
        log "POST $path answered $code, expected $want:"; cat "$work/response.json" >&2; echo >&2
        return 1
    fi
    cat "$work/response.json"
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

admin_token=$(post /api/auth/login 200 "{\"username\":\"admin\",\"password\":\"$admin_password\"}" | json_field token)
post /api/users 201 '{"username":"bench","password":"bench-password-1","admin":false}' "$admin_token" >/dev/null
bench_token=$(post /api/auth/login 200 '{"username":"bench","password":"bench-password-1"}' | json_field token)

log "creating 50 projects for user bench"
for i in $(seq 1 50); do
    name=$(printf 'p%02d' "$i")
    post /api/users/bench/projects 201 \
        "{\"name\":\"$name\",\"template\":\"hello\",\"description\":\"bench project $i\"}" "$bench_token" >/dev/null
done

url="$base/api/users/bench/projects"
header="Authorization: Bearer $bench_token"
# Check once that the measured request returns the 50 projects (a bare JSON
# list, or an object holding the list, e.g. {"projects": [...]}).
curl -sf -H "$header" "$url" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
if isinstance(doc, dict):
    lists = [v for v in doc.values() if isinstance(v, list)]
    assert len(lists) == 1, f"expected one list in {sorted(doc)}"
    doc = lists[0]
assert len(doc) == 50, f"expected 50 projects, got {len(doc)}"
print(f"    GET /api/users/bench/projects -> {len(doc)} projects", file=sys.stderr)
' || die "unexpected answer from $url"

measure "$label" "$url" "$header"
