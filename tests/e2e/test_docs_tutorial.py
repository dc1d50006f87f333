"""docs/tutorial.md, followed to the letter: the project it builds passes its own tests.

The page's titled code blocks are the project's files (`docs_project.py`). The project is
built in a temporary folder, its pytest suite runs in a subprocess, and `manage.py
runserver` serves it to the official JavaScript client over every transport, so a reader
who copies the page gets a working, tested hub.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, wait_for_port

from .conftest import run_node
from .docs_project import build_tutorial, project_env, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's project, built from the page's steps."""
    return build_tutorial(tmp_path_factory.mktemp("tutorial"))


def test_the_tutorials_tests_pass(project: Path) -> None:
    """The tutorial's own test file passes against the project the page builds."""
    out = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert "2 passed" in out, out


@pytest.fixture(scope="module")
def runserver(project: Path) -> Iterator[str]:
    """`manage.py runserver` on a free port, as the tutorial runs it (Daphne's runserver)."""
    port = free_port()
    log = project / "runserver.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=project,
            env=project_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=60, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert "ASGI/Daphne" in log.read_text(errors="replace")


def test_runserver_serves_the_page_and_the_hub(runserver: str) -> None:
    """runserver serves the page, the client script and the hub on every transport."""
    with urllib.request.urlopen(runserver + "/", timeout=30) as response:
        page = response.read().decode()
    assert "/static/chat/signalr.min.js" in page
    with urllib.request.urlopen(runserver + "/static/chat/signalr.min.js", timeout=30) as response:
        assert response.status == 200

    result = run_node("tutorial_chat.mjs", runserver + "/hubs/chat", timeout=120)
    for transport in ("WebSockets", "ServerSentEvents", "LongPolling"):
        assert result[transport]["received"] == "ada: hello", transport
        assert result[transport]["error"].endswith("HubException: Say something."), transport
