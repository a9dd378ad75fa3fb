"""Run the real ``regional-client`` CLI in a subprocess (this checkout's code)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT / "src")}


def run_cli(
    *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "regional_client", *args],
        input=stdin, capture_output=True, text=True, env=ENV, timeout=timeout,
    )  # fmt: skip
