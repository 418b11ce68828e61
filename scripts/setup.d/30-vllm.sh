#!/usr/bin/env bash
# vLLM's own argument parser for tests/serving (every rendered `vllm serve` argument list is parsed by it), and
# promtool for the alert-rule and autoscaling-query tests.
#
# Lean on purpose: the vLLM wheel is installed without its dependencies (they pull CUDA torch, GPU kernels and GBs of
# wheels), next to the CPU torch wheel and only the modules that importing the serve parser needs. The vLLM version
# is the one pinned in components/versions.py (VLLM), the same version as the container image tag.
# Idempotent and quick when done: a stamp in the venv records the version and this script's hash.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
VLLM_VERSION=$("$PY" -c 'from components.versions import VLLM; print(VLLM.version)')
# vLLM 0.31.0 declares torch==2.13.0; pip finds the machine's local CPU wheel of that version.
TORCH_VERSION=2.13.0
STAMP=".venv/.vllm-parser-${VLLM_VERSION}-$(sha256sum "$0" | cut -c1-12)"

installed() {
  "$PY" - "$VLLM_VERSION" "$TORCH_VERSION" <<'PY'
import importlib.metadata as md, sys
want_vllm, want_torch = sys.argv[1], sys.argv[2]
try:
    ok = md.version("vllm") == want_vllm and md.version("torch").split("+")[0] == want_torch
except md.PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
PY
}

# promtool (Debian's prometheus package): tests/serving run the alert rules and the KEDA queries on synthetic series.
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "30-vllm.sh: promtool is missing; install it with: sudo apt-get install -y prometheus" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # the package starts a server where systemd runs; the tests only need promtool
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

if [ -e "$STAMP" ] && installed; then
  exit 0
fi

pip_q() { "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
  | grep -v -e '^WARNING: Location' -e 'dependency conflicts' -e '^vllm .* requires' -e '^xgrammar .* requires' \
            -e "^ERROR: pip's dependency resolver" -e '^$' || true; }

export VLLM_TARGET_DEVICE=cpu
pip_q "torch==${TORCH_VERSION}"
pip_q --no-deps "vllm==${VLLM_VERSION}"
# xgrammar declares torch and triton; the parser import needs neither of those from it.
pip_q --no-deps "xgrammar==0.2.7" "apache-tvm-ffi==0.1.11"
# What `vllm.entrypoints.launchers.cli_args` imports (found by importing it in a clean venv). Unpinned where the
# project's venv already has a compatible version, so this step never downgrades another area's packages.
pip_q "llguidance>=1.7.0,<1.8.0" "openai>=2.25.0" "openai-harmony" "fastapi>=0.133.0" "aiohttp>=3.14.4" \
  "msgspec" "cloudpickle" "pillow" "pybase64" "cachetools" "uvloop" "py-cpuinfo" "prometheus-client>=0.18.0" \
  "opentelemetry-api>=1.27.0" "partial-json-parser" "psutil" "cbor2" "pyzmq>=25.0.0" "transformers" "pyyaml" \
  "requests"

"$PY" -c 'from vllm.entrypoints.launchers.cli_args import make_arg_parser' 2>/dev/null || {
  echo "30-vllm.sh: vllm ${VLLM_VERSION} is installed but its serve parser does not import; run:" >&2
  echo "  VLLM_TARGET_DEVICE=cpu $PY -c 'from vllm.entrypoints.launchers.cli_args import make_arg_parser'" >&2
  exit 1
}
rm -f .venv/.vllm-parser-*
touch "$STAMP"
