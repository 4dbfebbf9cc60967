#!/usr/bin/env bash
# `pip install ./clients/python` in a venv with Debian's site packages (python3-grpcio): the
# install generates the stubs with protoc, and the package imports. Offline: --no-index, and
# --no-build-isolation so Debian's setuptools builds it. Works on a copy, so the checkout
# gets no build/ or egg-info.
# Usage: python_client_install_test.sh REPO_ROOT
set -euo pipefail
root=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/repo/clients"
cp -r "$root/clients/python" "$tmp/repo/clients/python"
cp -r "$root/proto" "$tmp/repo/proto"
if ! /usr/bin/python3 -m venv --system-site-packages "$tmp/venv" 2>/dev/null; then
  echo "SKIP: python3-venv is not installed"
  exit 77
fi
"$tmp/venv/bin/pip" install --quiet --no-index --no-build-isolation "$tmp/repo/clients/python"
cd "$tmp"
"$tmp/venv/bin/python" -c '
from grinqh_client import Client, pb
assert pb.GenerateRequest(prompt="x", max_tokens=1).max_tokens == 1
Client("127.0.0.1:1").close()
print("grinqh_client installed and imported")'
