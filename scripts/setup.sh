#!/usr/bin/env bash
# One-stop setup on a fresh Debian 12 machine (as root): the Docker engine (started with
# this project's network-less flags), the sandbox images, and a virtualenv in .venv with
# sandboxd and its test dependencies. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/start-docker.sh
bash scripts/build-images.sh

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "setup: ready (.venv/bin/sandboxd)"
