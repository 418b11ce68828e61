#!/usr/bin/env bash
# Creates .venv at the repo root and installs the project with its test extras, then runs scripts/setup.d/*.sh
# (system packages such as redis-server, the vLLM parser install). Called by `make setup`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# Progress: one header line per step, then one dot per package pip collects (its own "Collecting" lines), so a first
# run that takes minutes shows it is working; pip's warnings and errors still print in full.
step() { echo "setup: $*"; }
progress() {
  awk '/^Collecting /{printf "."; n++; fflush(); next}
       /^Successfully installed /{if (n) printf "\n"; printf "  installed %d package(s)\n", NF - 2; n = 0; fflush(); next}
       /^(  |Requirement already satisfied|Obtaining|Installing collected|Building wheels|Downloading|Using cached|Looking in)/ {next}
       /^WARNING: Location|WheelFile|^ *!!|^ *\*\*\*|^$/ {next}
       {if (n) {printf "\n"; n = 0}; print; fflush()}
       END {if (n) printf "\n"}'
}
if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $PYTHON (first run: the installs below take a few minutes)"
  "$PYTHON" -m venv .venv
fi
pip_install() { .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off "$@" 2>&1 | progress; }
# CPU torch first, from the machine's local wheel: the test extras (sentence-transformers, vLLM's parser) accept it,
# so pip never fetches a multi-GB CUDA build.
if ! .venv/bin/python -c 'import importlib.metadata as m, sys; sys.exit(m.version("torch").split("+")[0] != "2.13.0")' 2>/dev/null; then
  step "installing torch 2.13.0 (CPU)"
  pip_install "torch==2.13.0"
fi
step "installing genai-scale and its test extras (pip install -e '.[test]')"
pip_install -e '.[test]'
.venv/bin/python -c 'import pulumi, pulumi_aws, pulumi_kubernetes, pydantic'
for script in scripts/setup.d/*.sh; do
  [ -e "$script" ] || continue
  step "running $script"
  bash "$script"
done
step "done"
