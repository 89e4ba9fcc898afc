#!/usr/bin/env bash
# The whole test suite: builds envhub (the command-line tests run the binary), starts a
# throwaway PostgreSQL so that every store and server test runs on SQLite and PostgreSQL,
# and runs `swift test`. Used by developers and by CI (.ci/run) alike.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --build-tests
scripts/with-postgres.sh swift test --skip-build "$@"
