"""docs/tutorial.md, followed to the letter: the project it builds passes its own tests.

The page's code blocks with a `title="path"` are the project's files (`(at the end)` means
appended to the file `startproject` wrote). The project is built in a temporary folder,
its pytest suite runs in a subprocess, and `manage.py runserver` serves it to the official
JavaScript client over every transport, so a reader who copies the page gets a working,
tested hub.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ROOT, free_port, wait_for_port

from .conftest import run_node

pytestmark = pytest.mark.e2e

TUTORIAL = ROOT / "docs" / "tutorial.md"
FENCE = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)
APPEND = " (at the end)"


def tutorial_files() -> list[tuple[str, str, bool]]:
    """(path, text, append) for every titled code block of the tutorial, in page order."""
    files = []
    for title, body in FENCE.findall(TUTORIAL.read_text()):
        append = title.endswith(APPEND)
        files.append((title.removesuffix(APPEND), body, append))
    return files


def project_env() -> dict[str, str]:
    """The tutorial project imports this checkout's package, not an installed copy."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def run(args: list[str], cwd: Path, timeout: float = 120) -> str:
    """Run a command of the tutorial in the project; fail with its output if it fails."""
    proc = subprocess.run(
        args, cwd=cwd, env=project_env(), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's project, built from the page's steps."""
    root = tmp_path_factory.mktemp("tutorial")
    run([sys.executable, "-m", "django", "startproject", "mysite", "."], root)
    run([sys.executable, "manage.py", "startapp", "chat"], root)
    static = root / "chat" / "static" / "chat"
    static.mkdir(parents=True)
    client = ROOT / "node_modules" / "@microsoft" / "signalr" / "dist" / "browser"
    shutil.copy(client / "signalr.min.js", static)
    files = tutorial_files()
    assert {path for path, _, _ in files} >= {
        "mysite/settings.py",
        "mysite/asgi.py",
        "chat/hubs.py",
        "chat/tests.py",
    }
    for path, text, append in files:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if append:
            text = target.read_text() + "\n" + text
        target.write_text(text)
    run([sys.executable, "manage.py", "check", "--fail-level", "WARNING"], root)
    run([sys.executable, "manage.py", "migrate", "-v0"], root)
    return root


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
