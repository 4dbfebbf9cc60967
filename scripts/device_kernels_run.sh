#!/usr/bin/env bash
# On the GPU machine: the GPU tests, compute-sanitizer on them, the kernel benchmark and its
# PyTorch peers, in one call. Expects the bundle made by scripts/device_bundle.sh --kernels
# in the folder holding this script; writes logs under $OUT (or ./out).
#   scripts/device_kernels_run.sh [tests|sanitize|bench|profile|peers|sass]...   (default: tests sanitize bench peers)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
export LD_LIBRARY_PATH="$here/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
steps=${*:-tests sanitize bench peers}
status=0
echo "== $(date -u) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
for step in $steps; do
  case $step in
    tests)
      for t in "$here"/cuda_*_test; do "$t" 2>&1 | tee -a "$out/tests.log" | grep -E '^\[  (PASSED|FAILED)|^\[       OK|FAILED|Failure|differ|max error|error' ; [ "${PIPESTATUS[0]}" = 0 ] || status=1; done ;;
    sanitize)
      # The awkward shapes and small batches (the Llama shapes' kernels are the same code,
      # and under the sanitizer a 128256-row reference takes minutes).
      for tool in memcheck racecheck; do
        compute-sanitizer --tool $tool --error-exitcode 9 "$here/cuda_graded_matvec_test" \
          --gtest_filter='*Awkward*:*Shallow*:*Dequantize*' 2>&1 | tail -4 | tee -a "$out/sanitize.log" || status=1
        compute-sanitizer --tool $tool --error-exitcode 9 "$here/cuda_grade_test" \
          --gtest_filter='*Shallow*:*Ties*:*Zero*' 2>&1 | tail -4 | tee -a "$out/sanitize.log" || status=1
      done ;;
    bench) "$here/grinqh_kernel_bench" 2>&1 | tee "$out/bench.log" || status=1 ;;
    profile)
      # Nsight Compute on single calls (gate_up at 2 bits and at uniform 8, one read plan,
      # one grading call):
      # instructions executed, DRAM bytes, issue activity, occupancy.
      metrics=gpu__time_duration.sum,dram__bytes_read.sum,smsp__thread_inst_executed.sum,smsp__inst_executed.sum
      metrics=$metrics,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active
      metrics=$metrics,launch__registers_per_thread,launch__occupancy_limit_registers
      for skip in 10 250; do
        timeout 120 ncu --kernel-name regex:GradedMatVecKernel --launch-skip $skip --launch-count 1 --metrics $metrics \
          "$here/grinqh_kernel_bench" --quick --shape gate_up 2>&1 | grep -E "GradedMatVec|^ +[a-z_]+__" | tee -a "$out/ncu.log"
      done
      timeout 120 ncu --kernel-name regex:BuildReadPlanKernel --launch-skip 10 --launch-count 1 --metrics $metrics \
        "$here/grinqh_kernel_bench" --quick --shape gate_up 2>&1 | grep -E "BuildReadPlan|^ +[a-z_]+__" | tee -a "$out/ncu.log"
      timeout 120 ncu --kernel-name regex:GradeRowsKernel --launch-skip 2 --launch-count 1 --metrics $metrics \
        "$here/grinqh_kernel_bench" --quick --shape gate_up 2>&1 | grep -E "GradeRows|^ +[a-z_]+__" | tee -a "$out/ncu.log" ;;
    sass)
      # The matvec's instruction mix (static counts over the whole kernel).
      cuobjdump --dump-sass "$here/cuda_graded_matvec_test" | awk '/Function :/{f=($0 ~ /GradedMatVecKernel/)} f' |
        grep -oE '^ +/\*[0-9a-f]{4}\*/ +[A-Z0-9_.]+' | awk '{print $2}' | cut -d. -f1 | sort | uniq -c | sort -rn |
        head -24 | tee "$out/sass.log" ;;
    peers) PYTHONUNBUFFERED=1 python3 "$here/kernel_peers.py" 2>&1 | tee "$out/peers.log" || status=1 ;;
  esac
done
exit $status
