#!/usr/bin/env bash
# Installs the Python-side tools the tests need (moto's server, cfn-lint, the SAM CLI,
# cargo-lambda with zig) into .venv, so a fresh machine needs nothing installed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-tools.txt; then
  echo "error: could not install the test tools from PyPI (see scripts/requirements-tools.txt)" >&2
  exit 1
fi
