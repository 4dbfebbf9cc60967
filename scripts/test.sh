#!/usr/bin/env bash
# Set up, build and run every test. With --sanitize, the same under ASan + UBSan. With
# --tsan, the tests where threads meet (label `concurrency`: the scheduler, the HTTP and
# metrics servers; label `integration`: the real server and its clients) under
# ThreadSanitizer, which stops at the first race (tests/tsan.supp says what is suppressed).
# Tests that need ../shared (or $GRINQH_SHARED_DIR) skip with a message when it is absent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ctest_args=()
case "${1:-}" in
  --sanitize)
    build_dir="$root/build-sanitize"
    "$root/scripts/build.sh" "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRINQH_SANITIZE=ON
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
  --tsan)
    build_dir="$root/build-tsan"
    # Only what those tests run: TSan builds are slow, and CI's time is counted.
    GRINQH_BUILD_TARGET="grinqh scheduler_test openai_http_server_test metrics_test server_test
                         metrics_exposition_server grinqh_proto_python test_protos_python" \
      "$root/scripts/build.sh" "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRINQH_SANITIZE=thread
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp"
    export GRINQH_TEST_TIME_SCALE=10  # timing-bound tests wait this much longer
    # Left to the two builds above: the tests that start TLS servers (OpenSSL is not built
    # for TSan, and its handshakes are slow there) and hardening_test's 350-stream load with
    # 2 s probe deadlines, timing-bound at TSan's speed.
    ctest_args=(-L 'concurrency|integration' -E 'security_test|prometheus_scrape_secure_test|openai_sdk_test|hardening_test')
    ;;
  *)
    build_dir="$root/build"
    "$root/scripts/build.sh" "$build_dir"
    ;;
esac
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "${ctest_args[@]}"
