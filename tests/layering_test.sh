#!/usr/bin/env bash
# Which folder may include which (docs/ARCHITECTURE.md): every #include "engine/...",
# "kernels/..." or "server/..." in a folder's sources must name a folder that folder may use.
# The libraries enforce the same at link time; this names the offending line.
set -uo pipefail
root=${1:?usage: layering_test.sh REPO_ROOT}
cd "$root" || exit 1

# folder: the folders (prefixes) its files may include, besides itself
declare -A allowed=(
  [engine/base]=""
  [engine/tokenizer]="engine/base"
  [engine/quant]="engine/base"
  [engine/model]="engine/base engine/quant engine/tokenizer"
  [engine/backends]="engine/base engine/quant engine/model kernels"
  [engine/serving]="engine/base engine/quant engine/model engine/tokenizer engine/backends/backend.h engine/backends/registry.h"
  [engine/calibration]="engine/base engine/quant engine/model engine/tokenizer engine/backends engine/serving"
  [kernels]=""
  [server]="engine/base engine/tokenizer engine/model engine/serving engine/calibration engine/quant/gptq.h server proto"
)

failures=0
for folder in "${!allowed[@]}"; do
  while IFS= read -r line; do
    file=${line%%:*}
    target=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$line")
    case "$target" in engine/*|kernels/*|server/*) ;; *) continue ;; esac
    [[ "$target" == "$folder"/* ]] && continue
    ok=0
    for prefix in ${allowed[$folder]}; do
      [[ "$target" == "$prefix" || "$target" == "$prefix"/* ]] && ok=1
    done
    if [ $ok -eq 0 ]; then
      echo "FAIL: $file includes $target ($folder may use: ${allowed[$folder]:-nothing outside itself})"
      failures=$((failures + 1))
    fi
  done < <(grep -rn --include='*.h' --include='*.cc' --include='*.cu' --include='*.cuh' '#include "' "$folder" | grep -v '^[^:]*:[0-9]*:\s*//')
done
[ $failures -eq 0 ] && echo "layering: every include points where it may" 
exit $((failures > 0))
