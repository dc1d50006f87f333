"""Build the documentation's example project from the pages' own code blocks.

A fenced block with `title="path"` is a file of the project; `title="path (at the end)"`
is appended to the file `startproject` wrote. Tests that follow the docs use this, so a
page that stops working fails the suite.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT

DOCS = ROOT / "docs"
FENCE = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)
APPEND = " (at the end)"


def titled_blocks(page: str) -> list[tuple[str, str]]:
    """(title, text) of every titled code block of `docs/<page>`, in page order."""
    return FENCE.findall((DOCS / page).read_text())


def block(page: str, title: str) -> str:
    """The text of the code block titled `title` on `docs/<page>`."""
    for found, text in titled_blocks(page):
        if found == title:
            return text
    raise AssertionError(f"docs/{page} has no code block titled {title!r}")


def project_env(**extra: str) -> dict[str, str]:
    """The example project imports this checkout's package, not an installed copy."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, timeout: float = 120, **env: str) -> str:
    """Run a command in the project; fail with its output if it fails."""
    proc = subprocess.run(
        args, cwd=cwd, env=project_env(**env), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build_tutorial(root: Path) -> Path:
    """Follow docs/tutorial.md in `root`: startproject, startapp, every file, migrate."""
    run([sys.executable, "-m", "django", "startproject", "mysite", "."], root)
    run([sys.executable, "manage.py", "startapp", "chat"], root)
    static = root / "chat" / "static" / "chat"
    static.mkdir(parents=True)
    client = ROOT / "node_modules" / "@microsoft" / "signalr" / "dist" / "browser"
    shutil.copy(client / "signalr.min.js", static)
    blocks = titled_blocks("tutorial.md")
    titles = {title.removesuffix(APPEND) for title, _ in blocks}
    assert titles >= {"mysite/settings.py", "mysite/asgi.py", "chat/hubs.py", "chat/tests.py"}
    for title, text in blocks:
        target = root / title.removesuffix(APPEND)
        target.parent.mkdir(parents=True, exist_ok=True)
        if title.endswith(APPEND):
            text = target.read_text() + "\n" + text
        target.write_text(text)
    run([sys.executable, "manage.py", "check", "--fail-level", "WARNING"], root)
    run([sys.executable, "manage.py", "migrate", "-v0"], root)
    return root
