#!/usr/bin/env bash
# One-stop setup on a fresh Debian 12 machine (as root): the Docker engine (started with
# this project's network-less flags), the sandbox images, the web terminal's front-end
# packages and the tests' socket.io-client (npm), Chromium for the browser tests, and a
# virtualenv in .venv with sandboxd and its test dependencies. Safe to run again; it only
# does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/start-docker.sh
bash scripts/build-images.sh

need=""
command -v npm >/dev/null 2>&1 || need="$need npm"
command -v openssl >/dev/null 2>&1 || need="$need openssl"  # the TLS engine test makes certificates
[ -x /usr/bin/chromium ] || need="$need chromium"
if [ -n "$need" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $need >/dev/null
fi
if [ ! -f sandboxd/web/node_modules/@xterm/xterm/lib/xterm.js ]; then
  (cd sandboxd/web && npm ci --no-audit --no-fund --silent)
fi
# socket.io-client, for the Socket.IO tests (Node scenarios and the browser bundle).
if [ ! -f tests/js/node_modules/socket.io-client/dist/socket.io.min.js ]; then
  (cd tests/js && npm ci --no-audit --no-fund --silent)
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "setup: ready (.venv/bin/sandboxd)"
