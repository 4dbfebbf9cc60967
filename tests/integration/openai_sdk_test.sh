#!/usr/bin/env bash
# The official OpenAI SDK for JavaScript against the real server (openai_sdk_test.mjs), then
# against a server with TLS and bearer tokens (openai_sdk_security_test.mjs).
# Installs the npm package `openai` into SDK_DIR once; skips (exit 77) without Node.js or npm,
# or when the npm registry cannot be reached.
# Usage: openai_sdk_test.sh GRINQH_BINARY REPO_ROOT SDK_DIR
set -euo pipefail
grinqh=$1
model="$2/models/tiny-llama3"
sdk_dir=$3
here=$(dirname "$0")
command -v node >/dev/null && command -v npm >/dev/null || { echo "Node.js or npm is not installed: skipped"; exit 77; }
if [ ! -f "$sdk_dir/node_modules/openai/package.json" ]; then
  mkdir -p "$sdk_dir"
  # v6: the newest major that runs on Node.js 20 (v7 needs 22).
  if ! npm install --prefix "$sdk_dir" --no-audit --no-fund --loglevel=error openai@6 >"$sdk_dir/npm.log" 2>&1; then
    cat "$sdk_dir/npm.log"
    echo "cannot install the openai npm package: skipped"
    exit 77
  fi
fi
source "$here/http_server.sh"
start_server
expected=$(mktemp)
generate_text 'def fibonacci(n):' 20 >"$expected"
node "$here/openai_sdk_test.mjs" "$sdk_dir" "http://127.0.0.1:$HTTP_PORT/v1" "$expected"
rm -f "$expected"
kill "$server_pid"
wait "$server_pid" || true
rm -f "$server_log"

# HTTPS with a test CA made now, and a token.
secrets=$(mktemp -d)
"$here/make_test_certs.sh" "$secrets"
token="sdk-token-$RANDOM$RANDOM"
echo "$token" >"$secrets/tokens"
printf 'tls:\n  cert_file: %s\n  key_file: %s\nauth:\n  tokens_file: %s\n' \
  "$secrets/server.crt" "$secrets/server.key" "$secrets/tokens" >"$secrets/config.yaml"
start_server --config "$secrets/config.yaml"
NODE_EXTRA_CA_CERTS="$secrets/ca.crt" node "$here/openai_sdk_security_test.mjs" "$sdk_dir" \
  "https://127.0.0.1:$HTTP_PORT/v1" "$token"
rm -rf "$secrets"
