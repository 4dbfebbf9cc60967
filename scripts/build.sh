#!/usr/bin/env bash
# Installs dependencies (idempotent), configures and builds.
# Usage: scripts/build.sh [BUILD_DIR] [cmake args...]; GRINQH_BUILD_TARGET="name..." builds only those.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-"$root/build"}
shift || true
"$root/scripts/setup.sh"
cmake -S "$root" -B "$build_dir" -G Ninja "$@" >/dev/null
# Unquoted on purpose: the names are split into separate --target arguments.
# shellcheck disable=SC2086
cmake --build "$build_dir" ${GRINQH_BUILD_TARGET:+--target $GRINQH_BUILD_TARGET}
