#!/usr/bin/env bash
# Creates .venv at the repo root and installs the project with its test extras, then runs scripts/setup.d/*.sh
# (system packages such as redis-server, the vLLM parser install). Called by `make setup`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
quiet() { grep -v -e '^WARNING: Location' -e '^$' -e 'WheelFile' -e '^ *!!' -e '^ *\*\*\*' || true; }
# CPU torch first, from the machine's local wheel: the test extras (sentence-transformers, vLLM's parser) accept it,
# so pip never fetches a multi-GB CUDA build.
if ! .venv/bin/python -c 'import importlib.metadata as m, sys; sys.exit(m.version("torch").split("+")[0] != "2.13.0")' 2>/dev/null; then
  .venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | quiet
fi
.venv/bin/python -m pip install -q -e '.[test]' 2>&1 | quiet
.venv/bin/python -c 'import pulumi, pulumi_aws, pulumi_kubernetes, pydantic'
for step in scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
