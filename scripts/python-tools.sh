#!/usr/bin/env bash
# Prints the path of a Python venv holding the checkers the test suite uses
# (openapi-spec-validator), creating or updating it from PyPI when needed.
# It lives in .build/, so it is never committed and `swift package clean` keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.build/python-tools
requirements=(openapi-spec-validator)
stamp="$venv/.installed-${requirements[*]// /-}"

if [ ! -f "$stamp" ]; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >&2 2>/dev/null; then
        # Debian's python3 needs the venv module as a package of its own.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2
        python3 -m venv "$venv" >&2
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "${requirements[@]}" >&2
    touch "$stamp"
fi
echo "$venv"
