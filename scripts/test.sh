#!/usr/bin/env bash
# Set up, build and run every test. With --sanitize, the same under ASan + UBSan.
# Tests that need ../shared (or $GRINQH_SHARED_DIR) skip with a message when it is absent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--sanitize" ]; then
  build_dir="$root/build-sanitize"
  "$root/scripts/build.sh" "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRINQH_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  build_dir="$root/build"
  "$root/scripts/build.sh" "$build_dir"
fi
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
