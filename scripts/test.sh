#!/usr/bin/env bash
# The whole test suite. In order:
#  0. install the Debian packages the tests run for real (scripts/system-packages.sh);
#  1. openapi.json must be a valid OpenAPI 3.1 document (openapi-spec-validator);
#  2. build envhub and the tests (the command-line tests run the binary);
#  3. validate deploy/ and the objects every built-in template makes on Kubernetes, strictly,
#     for each supported Kubernetes version, and lint the Dockerfiles
#     (scripts/validate-kubernetes.sh);
#  4. fuzz the running API against that document (scripts/fuzz-api.sh, fixed seed): no 5xx,
#     every answer as documented, bad input refused;
#  5. start a throwaway PostgreSQL so that every store and server test runs on SQLite and
#     PostgreSQL, and run the Swift tests (scripts/swift-tests.sh: live output, a deadline);
#  6. the browser tests: Selenium driving headless Chromium (scripts/browser-tests.sh).
# Used by developers and by CI (.ci/run) alike; extra arguments go to the Swift tests
# (e.g. --filter GatewayTests).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/system-packages.sh
tools=$(scripts/python-tools.sh)
"$tools/bin/openapi-spec-validator" Sources/EnvHubServer/Resources/openapi.json

swift build --build-tests
scripts/validate-kubernetes.sh
scripts/fuzz-api.sh
scripts/with-postgres.sh scripts/swift-tests.sh "$@"
scripts/browser-tests.sh
