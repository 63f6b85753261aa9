"""``scripts/make_example_audio.py``: without espeak-ng, or given arguments, one ``error:`` line and nothing written
(the first was a ``FileNotFoundError`` traceback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_example_audio.py"
EXAMPLE = ROOT / "multistill" / "examples" / "example.wav"


@pytest.mark.parametrize(("argv", "message"), [
    ([], "error: espeak-ng is not installed (apt-get install espeak-ng); nothing was written."),
    (["out.wav"], "error: this script takes no arguments"),
])
def test_refuses_before_writing(tmp_path: Path, argv: list[str], message: str):
    if shutil.which("espeak-ng") is not None and not argv:
        pytest.skip("espeak-ng is installed here")
    before = EXAMPLE.stat().st_mtime_ns
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # python, and no espeak-ng
    proc = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith(message) and proc.stderr.count("\n") == 1
    assert EXAMPLE.stat().st_mtime_ns == before
