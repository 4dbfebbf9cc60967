#!/usr/bin/env bash
# The main job: set up, build, and stream a completion from the bundled default model.
# Extra arguments go to `grinqh generate` (e.g. --prompt "..." --max-tokens 64).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
GRINQH_BUILD_TARGET=grinqh "$root/scripts/build.sh" "$root/build"
case " $* " in
  *" --prompt"*) ;;                               # the caller gave a prompt
  *) set -- --prompt 'def fibonacci(n):' --max-tokens 96 "$@" ;;
esac
exec "$root/build/server/grinqh" generate --model "$root/models/tiny-llama3" "$@"
