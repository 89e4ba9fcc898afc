#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup/on_signal run from traps, unseen by shellcheck
# Run a command against a throwaway PostgreSQL server.
#
#   scripts/with-postgres.sh COMMAND [ARGS...]
#
# Creates a fresh cluster in a temp dir, starts it on 127.0.0.1 on a free port,
# creates the database `envhub_test`, exports
#
#   ENVHUB_TEST_DATABASE_URL        postgres://postgres@127.0.0.1:PORT/envhub_test?sslmode=disable
#   ENVHUB_TEST_POSTGRES_ADMIN_URL  postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#
# runs COMMAND, then stops the server and deletes the temp dir whatever happens
# (normal exit, failure, Ctrl-C, SIGTERM). Exits with COMMAND's exit status.
#
# Example:
#   scripts/with-postgres.sh bash -c 'psql "$ENVHUB_TEST_DATABASE_URL" -c "select version()"'
#
# Environment:
#   WITH_POSTGRES_TIMEOUT  seconds to wait for the server to accept connections (default 60)
#   WITH_POSTGRES_KEEP_LOG=1  print the server log on exit (it is always printed on start failure)

set -euo pipefail

log() { printf 'with-postgres: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

timeout_s="${WITH_POSTGRES_TIMEOUT:-60}"

# --- 1. Make sure the server binaries exist -----------------------------------
# Debian puts initdb/pg_ctl under /usr/lib/postgresql/<major>/bin, not on PATH.
find_pg_bin() {
    local d
    # shellcheck disable=SC2012  # Debian's fixed layout: plain version numbers
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; fi
}

pg_bin=$(find_pg_bin)
if [ -z "$pg_bin" ]; then
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed and we are not root; run: apt-get install postgresql"
    log "installing PostgreSQL (apt-get install postgresql)"
    # No stdin in CI: keep apt/debconf from prompting.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q postgresql >&2
    pg_bin=$(find_pg_bin)
    [ -n "$pg_bin" ] || die "initdb still not found under /usr/lib/postgresql/*/bin after install"
fi

# --- 2. Who runs the server -----------------------------------------------------
# postgres refuses to run as root, so as root we run the server tools as the
# `postgres` OS user (created by the Debian package). As any other user we run
# them directly. `cd` into the temp dir first so the tools never complain about
# a working directory the postgres user cannot read (e.g. /root/...).
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "OS user 'postgres' does not exist"
    if command -v runuser >/dev/null 2>&1; then
        as_pg() { (cd "$tmp" && runuser -u postgres -- "$@"); }
    else
        # shellcheck disable=SC2016  # expanded by the inner sh, not here
        as_pg() { (cd "$tmp" && su -s /bin/sh -c '"$0" "$@"' postgres "$@"); }
    fi
    pg_owner=postgres
else
    as_pg() { (cd "$tmp" && "$@"); }
    pg_owner=$(id -un)
fi

# --- 3. Temp dir + cleanup -----------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/with-postgres.XXXXXX")
data="$tmp/data"
sock="$tmp/sock"          # unix socket dir: private to this run, never /var/run/postgresql
pglog="$tmp/postgres.log"
child=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -f "$data/postmaster.pid" ]; then
        # fast = roll back open transactions and disconnect clients, no waiting
        # for them to finish; fall back to immediate if that does not work.
        as_pg "$pg_bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w -t 10 stop >/dev/null 2>&1 \
            || log "warning: could not stop the server in $data"
    fi
    if [ "${WITH_POSTGRES_KEEP_LOG:-0}" = 1 ] && [ -f "$pglog" ]; then
        log "server log:"; cat "$pglog" >&2
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

# On a signal, pass it on to COMMAND (if running), let it finish, then exit
# with the conventional 128+N status; the EXIT trap does the cleanup.
on_signal() {
    local name=$1 num=$2
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        kill -s "$name" "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    exit $((128 + num))
}
trap 'on_signal INT 2' INT
trap 'on_signal TERM 15' TERM
trap 'on_signal HUP 1' HUP

chown "$pg_owner" "$tmp"
chmod 700 "$tmp"
as_pg mkdir -m 700 "$sock"

# --- 4. initdb -------------------------------------------------------------------
# trust auth: the server only listens on 127.0.0.1 and its own socket dir, and
# lives only as long as this script. C locale + UTF8 avoids depending on which
# locales the machine has generated. --no-sync: the cluster is disposable.
if ! as_pg "$pg_bin/initdb" -D "$data" --username=postgres --auth=trust \
        --encoding=UTF8 --no-locale --no-sync >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2
    die "initdb failed"
fi

# --- 5. Start on a free port -----------------------------------------------------
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Another process can grab the port between our probe and the server's bind,
# so if start fails with "address in use", pick a new port and try again.
port=""
for attempt in 1 2 3 4 5; do
    candidate=$(free_port)
    rm -f "$pglog"   # pg_ctl appends; start each attempt with a fresh log (written by the server user)
    # Durability settings off: data is thrown away at exit anyway. 500 connections: the
    # suite runs tests in parallel, each hub with a pool of up to 20 and a LISTEN connection,
    # and at the default 100 the refused ones ("too many clients") left change feeds waiting
    # on their back-off past tests' deadlines.
    if as_pg "$pg_bin/pg_ctl" -D "$data" -l "$pglog" -w -t "$timeout_s" \
            -o "-c listen_addresses=127.0.0.1 -c port=$candidate -c unix_socket_directories=$sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500" \
            start >"$tmp/pg_ctl.log" 2>&1; then
        port=$candidate
        break
    fi
    # Make sure a half-started server is gone before retrying or giving up.
    if [ -f "$data/postmaster.pid" ]; then
        as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
    fi
    if grep -q -i 'address already in use\|could not bind' "$pglog" 2>/dev/null; then
        log "port $candidate was taken, retrying ($attempt/5)"
        continue
    fi
    cat "$tmp/pg_ctl.log" "$pglog" >&2
    die "could not start PostgreSQL"
done
[ -n "$port" ] || { cat "$pglog" >&2; die "could not find a free port after 5 attempts"; }

# --- 6. Wait until it accepts TCP connections ---------------------------------------
# pg_ctl -w already waited for the postmaster; this confirms the TCP listener
# we hand out really answers, polling with a deadline instead of a fixed sleep.
deadline=$(( $(date +%s) + timeout_s ))
until "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        cat "$pglog" >&2
        die "server did not become ready within ${timeout_s}s"
    fi
    sleep 0.1
done

"$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres envhub_test \
    || { cat "$pglog" >&2; die "createdb envhub_test failed"; }

export ENVHUB_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/envhub_test?sslmode=disable"
export ENVHUB_TEST_POSTGRES_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
log "PostgreSQL $("$pg_bin/pg_ctl" --version | awk '{print $3}') ready on 127.0.0.1:$port (data in $tmp)"

# --- 7. Run the command ------------------------------------------------------------
# Run it in the background and `wait`, so that a SIGTERM sent to this script is
# handled right away (bash defers traps while a foreground child runs).
# Two bash quirks of background jobs in scripts are undone here:
#  - they get /dev/null as stdin: the explicit `<&0` keeps the caller's stdin;
#  - they start with SIGINT/SIGQUIT ignored, so Ctrl-C would not stop them:
#    GNU env --default-signal restores the default handlers.
reset_signals=()
if env --default-signal=INT,QUIT true 2>/dev/null; then
    # shellcheck disable=SC2054  # the comma belongs to the option
    reset_signals=(env --default-signal=INT,QUIT)
fi
set +e
"${reset_signals[@]}" "$@" <&0 &
child=$!
wait "$child"
status=$?
child=""
set -e
exit "$status"
