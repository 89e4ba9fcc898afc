#!/usr/bin/env bash
# bench/spawn: how long envhub takes to activate a `hello` environment (POST …/activate until
# the project is `active`), beside the bare start of the same workload (`envhub workload
# hello` until /health answers), measured in the same run. Prints medians, p95 and the hub's
# overhead. Usage: bench/spawn/run.sh   (BENCH_ACTIVATIONS=20, BENCH_ENVHUB_BIN=path)
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=${BENCH_ENVHUB_BIN:-.build/release/envhub}
if [ ! -x "$binary" ]; then
    swift build -c release --product envhub
fi
exec python3 bench/spawn/spawn.py "$binary" "${BENCH_ACTIVATIONS:-20}"
