#!/usr/bin/env bash
# The main job: set up, build, and serve the bundled default model over gRPC (CPU backend),
# with config/grinqh.yaml: gRPC on :50051, the OpenAI-compatible HTTP API on 127.0.0.1:8000,
# Prometheus metrics on :9400/metrics.
# Extra arguments go to `grinqh serve` (e.g. --port 50052, --model path/to/model.grinqh).
# Try it from another shell:  build/server/grinqh client --prompt 'def fibonacci(n):'
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
GRINQH_BUILD_TARGET=grinqh "$root/scripts/build.sh" "$root/build"
cd "$root"
exec "$root/build/server/grinqh" serve --config "$root/config/grinqh.yaml" "$@"
