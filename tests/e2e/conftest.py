"""Fixtures for end-to-end tests: a real Daphne (and uvicorn) serving the test project, and Node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT, Server, daphne, uvicorn

JS_DIR = Path(__file__).resolve().parent / "js"


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for server logs and screenshots."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def test_db(artifacts: Path) -> str:
    """A migrated SQLite database shared by the test servers."""
    path = artifacts / "db.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "SIGNALR_TEST_DB": str(path)}
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return str(path)


@pytest.fixture(scope="session")
def server(artifacts: Path, test_db: str) -> Iterator[Server]:
    """Daphne serving `tests.asgi` (the test hubs and views)."""
    with daphne(
        "tests.asgi:application", "tests.settings", artifacts, {"SIGNALR_TEST_DB": test_db}
    ) as srv:
        yield srv


@pytest.fixture(scope="session")
def uvicorn_server(artifacts: Path, test_db: str) -> Iterator[Server]:
    """uvicorn serving the same `tests.asgi`: every connection takes the generic ASGI path."""
    with uvicorn(
        "tests.asgi:application", "tests.settings", artifacts, {"SIGNALR_TEST_DB": test_db}
    ) as srv:
        yield srv


def node_available() -> None:
    """Fail (not skip) when Node or the official client is missing: the README installs them."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed; run the README's test command to set up")
    if not (ROOT / "node_modules" / "@microsoft" / "signalr").exists():
        pytest.fail("@microsoft/signalr is not installed; run `npm install` in the repository")


def run_node(
    script: str, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> Any:
    """Run a Node scenario; it prints one JSON line (its result) last. Fails on non-zero exit."""
    node_available()
    proc = subprocess.run(
        ["node", str(JS_DIR / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        pytest.fail(
            f"node {script} {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None
