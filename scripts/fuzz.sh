#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan) and runs each for SECONDS
# (default 30) from its seed corpus, tests/fuzz/corpus/<target>/. Fails on any crash, leak,
# sanitizer report, timeout or broken property; the input that did it is saved under
# build-fuzz/artifacts/. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# New inputs the fuzzers find go to build-fuzz/corpus/<target>/, never into the repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
shift || true
build_dir="$root/build-fuzz"
all_targets=(tokenizer_encode tokenizer_json chat_template safetensors grinqh_file model_config server_config
             generate_request)
targets=("${all_targets[@]}")
[ $# -eq 0 ] || targets=("$@")

# libFuzzer comes with clang; GCC builds the rest of the project.
CC=clang-14 CXX=clang++-14 GRINQH_BUILD_TARGET=grinqh_fuzzers \
  "$root/scripts/build.sh" "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRINQH_FUZZ=ON

mkdir -p "$build_dir/artifacts" "$build_dir/logs"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
summary=()
for target in "${targets[@]}"; do
  work="$build_dir/corpus/$target"
  mkdir -p "$work"
  log="$build_dir/logs/$target.log"
  echo "fuzz: $target for ${seconds}s"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a blow-up is a finding too.
  if "$build_dir/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build_dir/artifacts/$target-" \
      "$work" "$root/tests/fuzz/corpus/$target" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    failed+=("$target")
    tail -n 60 "$log"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  summary+=("$(printf '%-18s %-6s %10s execs  %5s new inputs' "$target" "$result" "${execs:-?}" \
    "$(find "$work" -type f | wc -l)")")
done
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build_dir/artifacts/, logs in $build_dir/logs/)" >&2
  exit 1
fi
