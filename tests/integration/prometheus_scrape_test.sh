#!/usr/bin/env bash
# A metrics endpoint as Prometheus sees it: the scraped text passes `promtool check metrics`
# with no lint problem at all, and a real Prometheus server scrapes the endpoint (target up)
# and answers a query from the samples.
#
# Usage: prometheus_scrape_test.sh [--timeout S] [--query PROMQL] [--expect VALUE] [--secure] -- CMD [ARG...]
#   CMD ARG...      starts the endpoint on 127.0.0.1; every `{port}` in the arguments is
#                   replaced by a free port the script picks, and /metrics is scraped there.
#                   On SIGTERM the command must exit 0 (within the timeout).
#   --secure        scrape over HTTPS with a bearer token, as Prometheus' `tls_config` and
#                   `authorization` do: a test CA, a server certificate (make_test_certs.sh) and
#                   a token are made in a folder that `{secrets}` in the arguments names, with
#                   {secrets}/grinqh.yaml, a `grinqh serve` config with its `tls:` and `auth:`;
#                   a scrape without the token must get 401.
#   --timeout S     seconds to wait for each stage (endpoint up, target up, query); default 30
#   --query PROMQL  instant query that must return at least one sample; default grinqh_requests_total
#   --expect VALUE  and the query's sample values must sum to VALUE
# e.g. prometheus_scrape_test.sh -- build/tests/metrics_exposition_server --port {port}
#      prometheus_scrape_test.sh --timeout 60 -- build/server/grinqh serve --metrics-port {port} ...
#
# Exits 0 when all passes, 1 on a failure, 77 (ctest's SKIP_RETURN_CODE) when promtool or
# prometheus is not installed.
set -uo pipefail

timeout=30 query=grinqh_requests_total expect="" secure=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in
    --timeout) timeout=$2; shift 2 ;;
    --query) query=$2; shift 2 ;;
    --expect) expect=$2; shift 2 ;;
    --secure) secure=1; shift ;;
    *) echo "unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [options] -- CMD [ARG...]" >&2; exit 2; }
shift

for tool in promtool prometheus; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (Debian package prometheus)"
    exit 77
  fi
done
python=/usr/bin/python3

tmp=$(mktemp -d)
endpoint_pid="" prometheus_pid=""
cleanup() {
  for pid in $endpoint_pid $prometheus_pid; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  for log in "$tmp"/endpoint.log "$tmp"/prometheus.log; do
    [ -s "$log" ] && { echo "--- last lines of $(basename "$log"):"; tail -n 20 "$log"; }
  done
  exit 1
}

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: runs COMMAND every 0.25 s until it succeeds; fails after SECONDS.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.25
  done
}

# 1. The endpoint.
port=$(free_port)
secrets="$tmp/secrets" scheme=http curl_secure=()
if [ -n "$secure" ]; then
  "$(dirname "$0")/make_test_certs.sh" "$secrets" || fail "cannot make the test certificates"
  echo "scrape-token-$RANDOM$RANDOM" >"$secrets/token"
  printf 'tls:\n  cert_file: %s\n  key_file: %s\nauth:\n  tokens_file: %s\n' \
    "$secrets/server.crt" "$secrets/server.key" "$secrets/token" >"$secrets/grinqh.yaml"
  scheme=https
  curl_secure=(--cacert "$secrets/ca.crt" -H "Authorization: Bearer $(cat "$secrets/token")")
fi
endpoint_cmd=()
for arg in "$@"; do
  arg=${arg//\{port\}/$port}
  endpoint_cmd+=("${arg//\{secrets\}/$secrets}")
done
"${endpoint_cmd[@]}" >"$tmp/endpoint.log" 2>&1 &
endpoint_pid=$!
url="$scheme://127.0.0.1:$port/metrics"
scrape() {
  kill -0 "$endpoint_pid" 2>/dev/null || fail "the endpoint command exited: ${endpoint_cmd[*]}"
  curl -fsS --max-time 5 "${curl_secure[@]}" -D "$tmp/headers" -o "$tmp/metrics.txt" "$url" 2>/dev/null
}
wait_for "$timeout" scrape || fail "no answer from $url within ${timeout}s"
grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/headers" ||
  fail "$url: Content-Type is not text/plain; version=0.0.4: $(grep -i '^content-type' "$tmp/headers")"
echo "scraped $url: $(grep -vc '^#' "$tmp/metrics.txt") samples"
if [ -n "$secure" ]; then
  tokenless=$(curl -sS --max-time 5 --cacert "$secrets/ca.crt" -o /dev/null -w '%{http_code}' "$url")
  [ "$tokenless" = 401 ] || fail "$url without a token: HTTP $tokenless, not 401"
  echo "without the token: 401"
fi

# 2. promtool: any output is a problem (lint warnings included), not just a non-zero status.
promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.out" 2>&1
promtool_status=$?
if [ $promtool_status -ne 0 ] || [ -s "$tmp/promtool.out" ]; then
  fail "promtool check metrics (status $promtool_status): $(cat "$tmp/promtool.out")"
fi
echo "promtool check metrics: no problems"

# 3. A real Prometheus scraping it every second.
prometheus_port=$(free_port)
api="http://127.0.0.1:$prometheus_port/api/v1"
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: grinqh
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
if [ -n "$secure" ]; then
  cat >>"$tmp/prometheus.yml" <<EOF
    scheme: https
    tls_config: {ca_file: '$secrets/ca.crt'}
    authorization: {credentials_file: '$secrets/token'}
EOF
fi
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$prometheus_port" >"$tmp/prometheus.log" 2>&1 &
prometheus_pid=$!

target_up() {
  kill -0 "$prometheus_pid" 2>/dev/null || fail "prometheus exited"
  curl -fsS --max-time 5 -o "$tmp/targets.json" "$api/targets" 2>/dev/null || return 1
  "$python" - "$tmp/targets.json" "127.0.0.1:$port" <<'EOF'
import json, sys
targets = json.load(open(sys.argv[1]))["data"]["activeTargets"]
sys.exit(0 if any(t["labels"]["instance"] == sys.argv[2] and t["health"] == "up" for t in targets) else 1)
EOF
}
if ! wait_for "$timeout" target_up; then
  fail "prometheus did not report the target up within ${timeout}s: $(cat "$tmp/targets.json" 2>/dev/null)"
fi
echo "prometheus: target 127.0.0.1:$port is up"

query_ok() {
  curl -fsS --max-time 5 -G --data-urlencode "query=$query" -o "$tmp/query.json" "$api/query" 2>/dev/null ||
    return 1
  "$python" - "$tmp/query.json" "$expect" <<'EOF'
import json, sys
answer = json.load(open(sys.argv[1]))
samples = answer["data"]["result"] if answer.get("status") == "success" else []
if not samples:
    sys.exit(1)
if sys.argv[2] and abs(sum(float(s["value"][1]) for s in samples) - float(sys.argv[2])) > 1e-9:
    sys.exit(1)
EOF
}
if ! wait_for "$timeout" query_ok; then
  fail "query '$query' did not return samples${expect:+ summing to $expect}: $(cat "$tmp/query.json" 2>/dev/null)"
fi
echo "prometheus: query '$query' returned samples${expect:+ summing to $expect}"

# 4. The endpoint stops cleanly on SIGTERM.
kill "$endpoint_pid"
endpoint_stopped() { ! kill -0 "$endpoint_pid" 2>/dev/null; }
wait_for "$timeout" endpoint_stopped || fail "the endpoint did not exit within ${timeout}s of SIGTERM"
wait "$endpoint_pid"
endpoint_status=$?
endpoint_pid=""
[ $endpoint_status -eq 0 ] || fail "the endpoint exited with status $endpoint_status on SIGTERM"
echo "PASS"
