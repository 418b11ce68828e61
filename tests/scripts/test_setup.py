"""scripts/setup.sh on a fresh machine shows progress (a header per step, a dot per package pip collects) and keeps
pip's warnings and errors; run against a stand-in Python whose pip prints what the real one prints."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = r"""#!/usr/bin/env bash
# stand-in for python3 / .venv/bin/python
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "Collecting pulumi"
  echo "  Downloading pulumi-3.200.0-py3-none-any.whl (300 kB)"
  echo "Collecting pydantic"
  echo "Requirement already satisfied: pyyaml in ./.venv/lib/python3.11/site-packages"
  echo "Installing collected packages: pydantic, pulumi"
  echo "WARNING: pip found something worth saying"
  echo "Successfully installed pulumi-3.200.0 pydantic-2.10.0"
  exit "${FAKE_PIP_EXIT:-0}"
fi
if [ "$1" = "-c" ]; then
  case "$2" in *torch*) exit 1;; esac   # torch not installed yet
  exit 0
fi
exit 0
"""


def _sandbox(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "scripts" / "setup.d").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    (tmp_path / "scripts" / "setup.d" / "10-noop.sh").write_text("echo step output\n")
    py = tmp_path / "python3"
    py.write_text(FAKE_PYTHON)
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    return tmp_path / "scripts" / "setup.sh", py


def _run(script: Path, py: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": str(py), **env})


def test_first_run_prints_a_header_per_step_and_a_dot_per_package(tmp_path):
    script, py = _sandbox(tmp_path)
    proc = _run(script, py)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"setup: creating .venv with {py} (first run: the installs below take a few minutes)",
        "setup: installing torch 2.13.0 (CPU)",
        "..",
        "WARNING: pip found something worth saying",
        "  installed 2 package(s)",
        "setup: installing genai-scale and its test extras (pip install -e '.[test]')",
        "..",
        "WARNING: pip found something worth saying",
        "  installed 2 package(s)",
        "setup: running scripts/setup.d/10-noop.sh",
        "step output",
        "setup: done",
    ]
    # a second run finds the venv: no "creating" header
    again = _run(script, py)
    assert not [line for line in again.stdout.splitlines() if "creating .venv" in line]


def test_a_failing_pip_fails_the_setup_with_its_message(tmp_path):
    script, py = _sandbox(tmp_path)
    proc = _run(script, py, FAKE_PIP_EXIT="1")
    assert proc.returncode == 1
    assert "WARNING: pip found something worth saying" in proc.stdout
    assert "setup: done" not in proc.stdout
