"""mypy --strict on user code of the hub API: typed clients, sync and async methods."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "typing" / "hub_usage.py"


def test_hub_api_type_checks_as_documented() -> None:
    """Good usages are clean and each marked mistake gets exactly its error code."""
    expected: dict[int, str] = {}
    for number, line in enumerate(SAMPLE.read_text().splitlines(), 1):
        marker = re.search(r"# E: ([a-z-]+)$", line)
        if marker:
            expected[number] = marker.group(1)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "pyproject.toml",
         "--no-error-summary", "--hide-error-context", "--show-error-codes", str(SAMPLE)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    found: dict[int, str] = {}
    for line in run.stdout.splitlines():
        match = re.match(r".*hub_usage\.py:(\d+): error: .*\[([a-z-]+)\]$", line)
        if match:
            found[int(match.group(1))] = match.group(2)
    assert found == expected, run.stdout + run.stderr
