#!/usr/bin/env bash
# Server throughput and latency on the CPU backend, and the gRPC overhead per streamed token.
#
# Starts `grinqh serve` on the model, runs serve_load at 1, 4 and 16 concurrent streams, then
# compares one stream through the server with `grinqh generate` (the engine alone, same
# prompt and length) in the same run. One JSON line per measurement on stdout.
#
# Usage: bench/serve_bench.sh [BUILD_DIR=build] [MODEL=models/tiny-llama3] [MAX_TOKENS=128]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
model=${2:-$root/models/tiny-llama3}
max_tokens=${3:-128}
grinqh=$build/server/grinqh
load=$build/bench/serve_load

log=$(mktemp)
"$grinqh" serve --config "$root/config/grinqh.yaml" --model "$model" --host 127.0.0.1 --port 0 --metrics-port 0 --http-port 0 \
  2>"$log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
  port=$(sed -nE 's/.* on 127\.0\.0\.1:([0-9]+),.*/\1/p' "$log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$log" >&2; exit 1; }

"$load" --server "127.0.0.1:$port" --concurrency 1 --requests 2 --max-tokens 16 >/dev/null  # warm-up
for c in 1 4 16; do
  requests=$(( c == 1 ? 16 : (c == 4 ? 8 : 4) ))
  "$load" --server "127.0.0.1:$port" --concurrency "$c" --requests "$requests" --max-tokens "$max_tokens"
done

# gRPC overhead: one stream of max_tokens through the server against the engine alone.
prompt='def function_0_0(x):'
for _ in 1 2 3 4 5; do
  "$load" --server "127.0.0.1:$port" --concurrency 1 --requests 1 --max-tokens "$max_tokens" --prompt def\ function \
    | sed 's/^{/{"mode":"grpc",/'
  "$grinqh" generate --model "$model" --prompt "$prompt" --max-tokens "$max_tokens" --json 2>/dev/null | tail -1 \
    | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"mode":"generate","tokens":r["completion_tokens"],"decode_tokens_per_second":r["decode_tokens_per_second"]}))'
done
