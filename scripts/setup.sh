#!/usr/bin/env bash
# Creates .venv at the repo root and installs the project with its test extras, then runs scripts/setup.d/*.sh
# (system packages such as redis-server, the vLLM parser install). Called by `make setup`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v -e '^WARNING: Location' -e '^$' || true
.venv/bin/python -c 'import pulumi, pulumi_aws, pulumi_kubernetes, pydantic'
for step in scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
