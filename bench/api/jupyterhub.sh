#!/usr/bin/env bash
# Measure JupyterHub's token-authenticated GET /hub/api/users/bench.
# Called by bench/api/run.sh (which sets BENCH_WORK, BENCH_RESULTS and installs
# the venv); not meant to be run on its own.
#
# BENCH_JUPYTERHUB_VIA, a comma list (default: hub,proxy):
#   hub    the hub process directly (its own port): JupyterHub's fastest path,
#          used as the baseline for the ratios
#   proxy  the public URL, i.e. through configurable-http-proxy, the way API
#          clients normally reach a JupyterHub
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${BENCH_WORK:?}" "${BENCH_RESULTS:?}"
IFS=',' read -r -a vias <<<"${BENCH_JUPYTERHUB_VIA:-hub,proxy}"
for via in "${vias[@]}"; do
    case "$via" in proxy|hub) ;; *) die "BENCH_JUPYTERHUB_VIA: expected hub and/or proxy, got '$via'" ;; esac
done

venv="$REPO_ROOT/bench/.venv"
[ -x "$venv/bin/jupyterhub" ] || die "no JupyterHub in $venv (run bench/api/run.sh)"

work="$BENCH_WORK/jupyterhub"
mkdir -p "$work"
hub_pid=""
# JupyterHub stops the proxy it started on SIGTERM; should the hub have needed
# a SIGKILL, the proxy (in its own session) is stopped through its pid file.
cleanup() {
    stop_bg "$hub_pid"
    if [ -s "$work/jupyterhub-proxy.pid" ]; then
        kill "$(cat "$work/jupyterhub-proxy.pid")" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# configurable-http-proxy from Debian: its modules live in /usr/share/nodejs,
# and the `node` first on PATH may be another one (nvm, NodeSource, ...), so
# run Debian's script with /usr/bin/node and NODE_PATH set explicitly.
node=""
for n in /usr/bin/node /usr/bin/nodejs; do [ -x "$n" ] && { node=$n; break; }; done
[ -n "$node" ] || die "no /usr/bin/node or /usr/bin/nodejs (apt-get install nodejs)"
chp_js=/usr/share/nodejs/configurable-http-proxy/bin/configurable-http-proxy
[ -f "$chp_js" ] || die "$chp_js missing (apt-get install node-configurable-http-proxy)"
cat >"$work/configurable-http-proxy" <<EOF
#!/bin/sh
NODE_PATH=/usr/share/nodejs exec $node $chp_js "\$@"
EOF
chmod +x "$work/configurable-http-proxy"

public_port=$(free_port)
hub_port=$(free_port)
proxy_api_port=$(free_port)
token=$(python3 -c 'import secrets; print(secrets.token_hex(32))')

# Everything JupyterHub writes (sqlite db, cookie secret, proxy pid file) goes
# into the temp dir.  One user `bench`, and a service whose API token may read
# users: that token is what wrk sends.
cat >"$work/jupyterhub_config.py" <<EOF
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:$public_port"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:$hub_port"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:$proxy_api_port"
c.ConfigurableHTTPProxy.command = ["$work/configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = "$work/jupyterhub-proxy.pid"
c.JupyterHub.db_url = "sqlite:///$work/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "$work/jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.Authenticator.allowed_users = {"bench"}
c.JupyterHub.services = [{"name": "bench", "api_token": "$token"}]
# The token is 256 random bits, so tell JupyterHub not to stretch it like a
# password (16384 sha512 rounds on every request otherwise): JupyterHub's own
# generated tokens get the same single round, and the comparison stays fair.
c.JupyterHub.trust_user_provided_tokens = True
c.JupyterHub.load_roles = [
    {"name": "bench-reader", "scopes": ["list:users", "read:users"], "services": ["bench"]},
]
EOF

version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("jupyterhub"))')
log "starting JupyterHub $version (public :$public_port, hub :$hub_port, proxy API :$proxy_api_port)"
cd "$work"
start_bg "$work/jupyterhub.log" env CONFIGPROXY_AUTH_TOKEN="$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
    "$venv/bin/jupyterhub" -f "$work/jupyterhub_config.py"
hub_pid=$!

header="Authorization: token $token"
hub_url="http://127.0.0.1:$hub_port/hub/api/users/bench"
proxy_url="http://127.0.0.1:$public_port/hub/api/users/bench"
# The public URL answers only once the hub has registered its routes with the
# proxy, so wait for that one.
wait_http "$hub_pid" "$proxy_url" 200 "$work/jupyterhub.log" -H "$header" || die "JupyterHub did not start"

for via in "${vias[@]}"; do
    case "$via" in
        hub)   url=$hub_url;   label="JupyterHub $version (hub port)" ;;
        proxy) url=$proxy_url; label="JupyterHub $version (via proxy)" ;;
    esac
    # Check once that we measure what we think we measure: 200 JSON for user bench.
    curl -sf -H "$header" "$url" | python3 -c '
import json, sys
u = json.load(sys.stdin)
assert u.get("name") == "bench", u
print("    GET", sys.argv[1], "->", json.dumps({k: u.get(k) for k in ("kind", "name", "admin")}), file=sys.stderr)
' "$url" || die "unexpected answer from $url"
    measure "$label" "$url" "$header"
done
