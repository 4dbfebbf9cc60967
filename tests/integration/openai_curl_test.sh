#!/usr/bin/env bash
# The OpenAI-compatible HTTP API with `curl -N`: the raw server-sent events of a streamed
# completion (data: lines, a finish reason, data: [DONE] last) and a whole one, both giving
# the text `grinqh generate` gives. Usage: openai_curl_test.sh GRINQH_BINARY REPO_ROOT
set -euo pipefail
grinqh=$1
model="$2/models/tiny-llama3"
command -v curl >/dev/null || { echo "curl is not installed: skipped"; exit 77; }
source "$(dirname "$0")/http_server.sh"
start_server

fail() { echo "FAIL: $*" >&2; exit 1; }
prompt='def fibonacci(n):'
expected=$(generate_text "$prompt" 20)
url="http://127.0.0.1:$HTTP_PORT/v1/completions"
body='{"model": "tiny-llama3", "prompt": "def fibonacci(n):", "max_tokens": 20, "temperature": 0'

events=$(curl -sS -N --fail-with-body "$url" -H 'Content-Type: application/json' -d "$body"', "stream": true}')
[ "$(grep -c '^data: ' <<<"$events")" -gt 3 ] || fail "too few events: $events"
[ "$(grep -v '^$' <<<"$events" | tail -1)" = 'data: [DONE]' ] || fail "the stream does not end with [DONE]: $events"
grep -v '^$' <<<"$events" | grep -qv '^data: ' && fail "a line that is not an event: $events"
streamed=$(grep '^data: {' <<<"$events" | sed 's/^data: //' |
  /usr/bin/python3 -c 'import json, sys; sys.stdout.write("".join(json.loads(l)["choices"][0]["text"] for l in sys.stdin))')
[ "$streamed" = "$expected" ] || fail "streamed '$streamed', grinqh generate gave '$expected'"
grep '^data: {' <<<"$events" | tail -1 | grep -q '"finish_reason":"length"' || fail "no finish reason in the last chunk"

whole=$(curl -sS --fail-with-body "$url" -H 'Content-Type: application/json' -d "$body}" |
  /usr/bin/python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin)["choices"][0]["text"])')
[ "$whole" = "$expected" ] || fail "non-streamed '$whole', grinqh generate gave '$expected'"

status=$(curl -sS -o /dev/null -w '%{http_code}' "$url" -d '{"prompt": "x", "n": 3}')
[ "$status" = 400 ] || fail "n = 3 answered $status"
[ "$(curl -sS "http://127.0.0.1:$HTTP_PORT/ready")" = '{"status":"ready"}' ] || fail "/ready"
echo "openai_curl_test: passed"
