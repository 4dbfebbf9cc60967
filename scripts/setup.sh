#!/usr/bin/env bash
# Installs the Debian 12 packages GRINQH Serve builds, tests and runs with.
# Idempotent: packages already present are skipped, so a second run costs a dpkg query.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  # API layer: gRPC, Protocol Buffers, Abseil (also the engine's Status type)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  # metrics (prometheus-cpp's registry and text serializer) and the OpenAI-compatible HTTP API,
  # both served by a small HTTP server library
  prometheus-cpp-dev libcpp-httplib-dev
  # TLS on the listeners and bearer tokens' digests (OpenSSL), and the `openssl` CLI that makes
  # the TLS tests' throwaway certificates
  libssl-dev openssl
  # configuration, JSON (config.json, tokenizer.json, safetensors headers)
  libyaml-cpp-dev nlohmann-json3-dev
  # .grinqh files: a CRC-32 per tensor
  zlib1g-dev
  # tokenizer: the pre-tokenizer's Unicode regex and NFC normalization
  libpcre2-dev libutf8proc-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3
  # integration tests: a Python gRPC client, and Prometheus's promtool and server
  python3-grpcio python3-protobuf prometheus
  # chat templates are checked against the real Jinja templates rendered by Jinja
  python3-jinja2
  # sampling (penalties, bias, min-p, logprobs) is checked against a numpy reference
  python3-numpy
  # the OpenAI-compatible HTTP API's tests: Python httpx and curl as clients (the official
  # OpenAI SDK's test installs the `openai` npm package itself, and skips without Node.js)
  python3-httpx curl
  # scripts/fuzz.sh: libFuzzer targets need clang and its sanitizer runtimes (libFuzzer itself)
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
