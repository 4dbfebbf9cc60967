#!/usr/bin/env bash
# The main job: set up, build, and stream a completion from the bundled default model.
# Extra arguments go to `grinqh generate` (e.g. --prompt "..." --max-tokens 64).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" "$root/build"
if [ $# -eq 0 ]; then
  set -- --prompt 'def fibonacci(n):' --max-tokens 96
fi
exec "$root/build/server/grinqh" generate --model "$root/models/tiny-llama3" "$@"
