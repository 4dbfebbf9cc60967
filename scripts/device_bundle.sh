#!/usr/bin/env bash
# Gathers the GPU test binaries and the Debian shared libraries they need into .device/,
# so they can run on a GPU machine that lacks those packages:
#   scripts/device_bundle.sh [BUILD_DIR]   then, there:   .device/run_gpu_tests.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-"$root/build"}
out="$root/.device"
rm -rf "$out" && mkdir -p "$out/lib"
tests=$(find "$build_dir/tests" -maxdepth 1 -name 'cuda_*_test' -type f -executable)
[ -n "$tests" ] || { echo "no GPU tests in $build_dir (was nvcc found?)" >&2; exit 1; }
for t in $tests; do
  cp "$t" "$out/"
  # Everything but the C runtime and libstdc++, which the GPU machine has (newer).
  ldd "$t" | awk '/=> \//{print $3}' | grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
    xargs -r cp -L -t "$out/lib/"
done
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
