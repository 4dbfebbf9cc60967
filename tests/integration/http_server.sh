# Sourced by the HTTP API's shell tests: start_server runs `grinqh serve` on free loopback
# ports and sets HTTP_PORT once it listens; the server is killed when the test exits.
# Needs $grinqh and $model.

start_server() {
  server_log=$(mktemp)
  "$grinqh" serve --model "$model" --host 127.0.0.1 --port 0 --metrics-port 0 --http-port 0 "$@" 2>"$server_log" &
  server_pid=$!
  trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; rm -f "$server_log"' EXIT
  for _ in $(seq 600); do
    HTTP_PORT=$(sed -n 's|.*OpenAI-compatible HTTP API on https\{0,1\}://127\.0\.0\.1:\([0-9]*\)/v1.*|\1|p' "$server_log")
    [ -n "$HTTP_PORT" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "grinqh serve did not start:" >&2
  cat "$server_log" >&2
  exit 1
}

# The greedy completion `grinqh generate` gives: the engine alone, no server.
generate_text() {  # PROMPT MAX_TOKENS
  "$grinqh" generate --model "$model" --prompt "$1" --max-tokens "$2" --json |
    tail -1 | /usr/bin/python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin)["text"])'
}
