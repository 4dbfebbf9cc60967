#!/usr/bin/env bash
# The `grinqh` CLI as a user runs it: output, exit codes and error messages.
# Usage: cli_test.sh GRINQH_BINARY REPO_ROOT
set -uo pipefail
grinqh=$1
model="$2/models/tiny-llama3"
passed=0 failed=0

# expect NAME WANT_EXIT PATTERN -- command...: the exit status is WANT_EXIT and the
# combined output matches the extended regex PATTERN.
expect() {
  local name=$1 want_exit=$2 pattern=$3
  shift 4
  local out
  out=$("$@" 2>&1)
  local code=$?
  if [ "$code" -eq "$want_exit" ] && grep -Eq -- "$pattern" <<<"$out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name (exit $code, want $want_exit; output should match /$pattern/):"
    echo "$out" | head -20
  fi
}

# transformers' greedy continuation of "import numpy as np\n" (fixture reference.json).
expect "generate from ids" 0 '"token_ids":\[512,3383,454,3247\]' -- \
  "$grinqh" generate --model "$model" --prompt-ids 0,779,1568,383,488,201 --max-tokens 4 --json
expect "generate streams text" 0 'from scipy import stats' -- \
  "$grinqh" generate --model "$model" --prompt $'import numpy as np\n' --max-tokens 4
expect "tokenize" 0 '^\[779,1568,383,488,201\]$' -- \
  "$grinqh" tokenize --model "$model" --text $'import numpy as np\n'
expect "tokenize with BOS" 0 '^\[0,779,1568,383,488,201\]$' -- \
  "$grinqh" tokenize --model "$model" --text $'import numpy as np\n' --add-special-tokens
expect "missing model" 1 'does not exist' -- "$grinqh" generate --model /nonexistent --prompt x
expect "unknown flag" 2 'unknown flag --bogus' -- "$grinqh" generate --model "$model" --prompt x --bogus 1
expect "bad temperature" 2 'temperature' -- "$grinqh" generate --model "$model" --prompt x --temperature -1
expect "bad top-p" 2 'top_p' -- "$grinqh" generate --model "$model" --prompt x --top-p 0
expect "non-numeric max tokens" 2 '--max-tokens must be an integer' -- \
  "$grinqh" generate --model "$model" --prompt x --max-tokens lots
expect "bad prompt ids" 2 "'x' is not a token id" -- "$grinqh" generate --model "$model" --prompt-ids 1,x
expect "id outside vocabulary" 2 'outside the vocabulary' -- "$grinqh" generate --model "$model" --prompt-ids 1,99999
expect "both prompts" 2 'exactly one of --prompt and --prompt-ids' -- \
  "$grinqh" generate --model "$model" --prompt x --prompt-ids 1
expect "unknown command" 2 "unknown command 'fly'" -- "$grinqh" fly
expect "version" 0 '^grinqh [0-9]+\.[0-9]+\.[0-9]+$' -- "$grinqh" --version
expect "version: revision and build" 0 '^git revision: ([0-9a-f]{7,}|unknown)$' -- "$grinqh" --version
expect "version: backends" 0 '^backends compiled in: (.*, )?cpu' -- "$grinqh" --version

# Every command answers --help (and -h) on stdout, exit 0, listing a flag it takes.
expect "help lists the commands" 0 'eval .*PPL' -- "$grinqh" --help
for command_flag in serve:--check-config client:--server generate:--prompt-ids quantize:--max-bits \
    tokenize:--add-special-tokens bench:--decode-tokens eval:--reference; do
  command=${command_flag%%:*} flag=${command_flag#*:}
  expect "$command --help" 0 "^  $flag " -- "$grinqh" "$command" --help
  expect "$command -h" 0 "usage: grinqh $command" -- "$grinqh" "$command" -h
done
if "$grinqh" eval --help 2>/dev/null | grep -q -- '--reference'; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "FAIL: eval --help should print its usage on stdout"
fi

# GRINQH: quantize the bundled model, then decode it at a graded depth.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect "quantize" 0 'wrote .*tiny.grinqh' -- bash -o pipefail -c \
  "\"$grinqh\" quantize --model \"$model\" --out \"$tmp/tiny.grinqh\" 2>&1 | tee \"$tmp/quantize.log\""
# stderr is not a terminal here: progress comes as plain lines, without carriage returns.
expect "quantize progress: plain lines" 0 '^quantizing: 100\.0% \([0-9.]+ s\)$' -- cat "$tmp/quantize.log"
expect "quantize progress: no carriage returns" 1 '' -- grep -q $'\r' "$tmp/quantize.log"
expect "generate at 3 bits" 0 '"finish_reason":"length"' -- \
  "$grinqh" generate --model "$tmp/tiny.grinqh" --prompt-ids 0,779,1568,383,488,201 --max-tokens 4 --bits 3 --json
expect "bits above the stored depth" 2 "outside this model's range" -- \
  "$grinqh" generate --model "$tmp/tiny.grinqh" --prompt x --bits 9
expect "bits on a plain model" 2 'need a GRINQH model' -- "$grinqh" generate --model "$model" --prompt x --bits 3
expect "not a model file" 2 'not a .grinqh file' -- "$grinqh" generate --model "$model/config.json" --prompt x

# The server's configuration is checked before anything starts.
config="$2/config/grinqh.yaml"
# The shipped config's model path is relative to the repository root.
expect "check the shipped config" 0 'the configuration is valid' -- \
  bash -c "cd \"$2\" && \"$grinqh\" serve --config \"$config\" --check-config"
expect "check a missing model" 1 'model\.path: .*does not exist' -- \
  "$grinqh" serve --config "$config" --model /nonexistent --check-config
expect "check a model that does not load" 2 'model\.path: .*not a \.grinqh file' -- \
  "$grinqh" serve --config "$config" --model "$model/config.json" --check-config
expect "check a backend not compiled in" 1 'backend: .*CUDA backend' -- \
  "$grinqh" serve --config "$config" --model "$model" --backend cuda --check-config
expect "flags override the config" 0 'port: 6000' -- "$grinqh" serve --config "$config" --model "$model" --port 6000 --check-config
expect "the HTTP API's port" 0 'port: 8080' -- "$grinqh" serve --config "$config" --model "$model" --http-port 8080 --check-config
expect "--host binds the HTTP API too" 0 'host: 0\.0\.0\.0' -- \
  bash -c "\"$grinqh\" serve --config \"$config\" --model \"$model\" --host 0.0.0.0 --http-port 8080 --check-config | sed -n '/^http:/,/^[a-z]/p'"
printf 'http:\n  prot: 1\n' >"$tmp/http_typo.yaml"
expect "unknown http key" 2 'http\.prot: unknown key' -- "$grinqh" serve --config "$tmp/http_typo.yaml" --check-config
printf 'batching:\n  max_queue: 0\n' >"$tmp/bad.yaml"
expect "bad config value" 2 'batching.max_queue' -- "$grinqh" serve --config "$tmp/bad.yaml" --check-config
printf 'batching:\n  max_qeue: 4\n' >"$tmp/typo.yaml"
expect "unknown config key" 2 'max_qeue' -- "$grinqh" serve --config "$tmp/typo.yaml" --check-config
expect "bad port flag" 2 'port' -- "$grinqh" serve --config "$config" --port 70000 --check-config
expect "no CUDA backend yet" 1 'CUDA backend' -- "$grinqh" serve --config "$config" --backend cuda --port 0 --metrics-port 0
# `client --models` against a real server on free loopback ports.
"$grinqh" serve --model "$model" --host 127.0.0.1 --port 0 --metrics-port 0 --http-port 0 2>"$tmp/serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
port=""
for _ in $(seq 600); do
  port=$(sed -nE 's/.* on 127\.0\.0\.1:([0-9]+),.*/\1/p' "$tmp/serve.log" | head -1)
  if [ -n "$port" ] || ! kill -0 "$serve_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
expect "client --models: a table's header" 0 '^NAME +ARCHITECTURE +BACKEND +CONTEXT +.*TIERS \(bits\)$' -- \
  "$grinqh" client --server "127.0.0.1:$port" --models
expect "client --models: a row" 0 '^tiny-llama3 +llama +cpu +[0-9]+ .* quality=full ' -- \
  "$grinqh" client --server "127.0.0.1:$port" --models
expect "client --models --json" 0 '^tiny-llama3 llama cpu quality$' -- bash -c \
  "\"$grinqh\" client --server 127.0.0.1:$port --models --json | python3 -c 'import json, sys
m = json.load(sys.stdin)[\"models\"][0]
print(m[\"name\"], m[\"architecture\"], m[\"backend\"], m[\"tiers\"][0][\"name\"])'"
kill "$serve_pid"

expect "no server to talk to" 1 'failed to connect|Connection refused|UNAVAILABLE|unavailable' -- \
  "$grinqh" client --server 127.0.0.1:1 --prompt x --timeout 5

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
