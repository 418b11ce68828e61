#!/usr/bin/env bash
# The whole test suite (what `make test` and CI run).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -q "$@"
