#!/usr/bin/env bash
# Gathers the GPU test binaries, the kernel benchmark and the Debian shared libraries they
# need into a folder (default .device/), so they can run on a GPU machine that lacks those
# packages:
#   scripts/device_bundle.sh [BUILD_DIR [OUT_DIR]]   then, there:   OUT_DIR/run_gpu_tests.sh
#   (or OUT_DIR/device_kernels_run.sh: tests, compute-sanitizer, benchmark and peers)
# For another machine build with -DGRINQH_NATIVE=OFF (e.g. -DCMAKE_CXX_FLAGS=-march=x86-64-v3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-"$root/build"}
out=${2:-"$root/.device"}
rm -rf "$out" && mkdir -p "$out/lib"
tests=$(find "$build_dir/tests" -maxdepth 1 -name 'cuda_*_test' -type f -executable)
[ -n "$tests" ] || { echo "no GPU tests in $build_dir (was nvcc found?)" >&2; exit 1; }
bench=$(find "$build_dir/bench" -maxdepth 1 -name 'grinqh_kernel_bench' -type f -executable)
for t in $tests $bench; do
  cp "$t" "$out/" && strip "$out/$(basename "$t")"
  # Everything but the C runtime, libstdc++ and CUDA's own libraries, which the GPU machine has.
  ldd "$t" | awk '/=> \//{print $3}' | { grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so|/cuda' || true; } |
    xargs -r cp -L -t "$out/lib/"
done
cp "$root/scripts/device_kernels_run.sh" "$root/bench/kernel_peers.py" "$out/"
cat > "$out/run_gpu_tests.sh" <<'RUN'
#!/usr/bin/env bash
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
for t in "$here"/cuda_*_test; do "$t" || status=1; done
exit $status
RUN
chmod +x "$out/run_gpu_tests.sh"
du -sh "$out"
