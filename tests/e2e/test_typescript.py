"""Generated TypeScript: compiled with `tsc --strict` and used with the official client.

`manage.py signalr_typescript` writes the module for every hub of the test project; tsc
compiles it together with `ts/typed_chat.ts`, a program that uses the wrapper of
`TypedChatHub` (tests/testapp/typed_hubs.py); Node runs the result against Daphne.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT, Server

from .conftest import node_available

pytestmark = pytest.mark.e2e

TS_DIR = Path(__file__).resolve().parent / "ts"
TSC = ROOT / "node_modules" / ".bin" / "tsc"

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "target": "ES2022",
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "outDir": "out",
        "skipLibCheck": True,
        # What the strictest projects turn on besides --strict: the module must pass them all.
        "noUnusedLocals": True,
        "noUnusedParameters": True,
        "noImplicitReturns": True,
        "exactOptionalPropertyTypes": True,
        "noUncheckedIndexedAccess": True,
        "noPropertyAccessFromIndexSignature": True,
        "verbatimModuleSyntax": True,
        "erasableSyntaxOnly": True,
    },
}


def generate(out: Path, protocol: str, *hubs: str) -> subprocess.CompletedProcess[str]:
    """Run the management command as a project would (settings from the environment)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    command = [sys.executable, "-m", "django", "signalr_typescript", "--out", str(out)]
    return subprocess.run(
        [*command, "--protocol", protocol, *hubs],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def compile_project(folder: Path, files: list[str]) -> None:
    """tsc --strict over `files` in `folder`; fails with tsc's output."""
    if not TSC.exists():
        pytest.fail("typescript is not installed; run `npm install` in the repository")
    (folder / "node_modules").symlink_to(ROOT / "node_modules")
    (folder / "package.json").write_text('{"type": "module"}')
    (folder / "tsconfig.json").write_text(json.dumps({**TSCONFIG, "files": files}))
    proc = subprocess.run(
        [str(TSC), "-p", str(folder)], cwd=folder, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        pytest.fail(f"tsc failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
def test_generated_wrapper_compiles_and_talks_to_the_hub(
    server: Server, tmp_path: Path, protocol: str
) -> None:
    """Every test hub's module compiles strictly; the typed wrapper's calls, streams,
    upload, client result and handlers work against Daphne with the official client."""
    node_available()
    generated = generate(tmp_path / "generated.ts", protocol)
    assert "Wrote" in generated.stderr
    text = (tmp_path / "generated.ts").read_text()
    assert "export class TypedChatHubClient" in text
    assert "export class TestHubClient" in text  # every mapped hub, found from ASGI_APPLICATION
    shutil.copy(TS_DIR / "typed_chat.ts", tmp_path / "typed_chat.ts")
    compile_project(tmp_path, ["generated.ts", "typed_chat.ts"])
    proc = subprocess.run(
        ["node", str(tmp_path / "out" / "typed_chat.js"), server.url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SIGNALR_PROTOCOL": protocol},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["message"] == {
        "userName": "ada",
        "text": "hello",
        "mood": "sad",
        "sentAt": "2024-01-02T03:04:06Z" if protocol == "json" else "2024-01-02T03:04:06.000Z",
        "tags": ["t"],
        "replyTo": "2024-01-02T03:04:05Z" if protocol == "json" else "2024-01-02T03:04:05.000Z",
    }
    assert result["received"] == [["ada", "hello", "sad", "first"]]
    assert result["greetings"] == ["Hello, ada!", "Hi, bob!"]
    assert result["countdown"] == [3, 2, 1]
    assert result["summary"] == {"label": "sum", "count": 2, "total": 3.5}
    assert result["answer"] == 4
    assert result["questions"] == ["six?"]
    assert result["notes"] == ["warning: sent without waiting"]
    assert result["reversed"] == [3, 2, 1]


def test_every_kind_of_annotation_compiles(tmp_path: Path) -> None:
    """The module for a hub using every kind of annotation passes tsc for both protocols,
    and what has no TypeScript form is a warning, not a failure."""
    node_available()
    hub = "tests.testapp.typed_hubs.KitchenSinkHub"
    files = []
    for protocol in ("json", "messagepack"):
        name = f"sink_{protocol}.ts"
        proc = generate(tmp_path / name, protocol, hub)
        assert "Opaque; using unknown" in proc.stderr
        assert "the member name send is taken; using send_" in proc.stderr
        files.append(name)
    compile_project(tmp_path, files)
