#!/usr/bin/env bash
# The whole test suite: builds envhub (the command-line tests run the binary), checks that
# openapi.json is a valid OpenAPI 3.1 document, starts a throwaway PostgreSQL so that every
# store and server test runs on SQLite and PostgreSQL, and runs `swift test`.
# Used by developers and by CI (.ci/run) alike; extra arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=$(scripts/python-tools.sh)
"$tools/bin/openapi-spec-validator" Sources/EnvHubServer/Resources/openapi.json

swift build --build-tests
scripts/with-postgres.sh swift test --skip-build "$@"
