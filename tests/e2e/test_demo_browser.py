"""The demo site in real Chromium windows: two people chat, a third one watches.

This is the check that the demo works for a person with a browser: the official
`signalr.min.js` served from node_modules, session login carried to the hub over the
WebSocket upgrade, groups, `clients.user`, a cancellable stream, and a sync Django view
sending through `get_sync_hub_context`, all judged by the text that appears on the pages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import run_node
from tests.redis_server import redis_url
from tests.servers import ROOT, daphne, free_port, gunicorn

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))


def wait_for_load_reports(redis: str, count: int, timeout: float = 60.0) -> None:
    """Wait until `count` workers published their load in the demo's cache (Redis db 1)."""
    import redis as redis_client

    client = redis_client.Redis.from_url(redis.rsplit("/", 1)[0] + "/1")
    deadline = time.monotonic() + timeout
    try:
        while len(client.keys("*signalr:load:*")) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} workers reported their load")
            time.sleep(0.1)
    finally:
        client.close()


def migrate_demo_db(path: Path) -> dict[str, str]:
    """Create the demo's tables in a fresh SQLite file; returns the env that selects it."""
    env = {
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DEMO_DB": str(path),
        "DJANGO_DEBUG": "1",  # Daphne serves static files (signalr.min.js) only in DEBUG
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        timeout=60,
    )
    return env


def run_scenario(artifacts: Path, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """Serve the demo with Daphne and drive it with `demo_browser.mjs`."""
    env = migrate_demo_db(tmp_path / "demo.sqlite3")
    shots = artifacts / "demo-screenshots"
    with daphne(
        "demo_project.asgi:application", "demo_project.settings", artifacts, env, name="demo"
    ) as server:
        try:
            result = run_node(
                "demo_browser.mjs",
                server.url,
                str(shots),
                timeout=90,
                env={"CHROMIUM_PATH": str(CHROMIUM)},
            )
        except pytest.fail.Exception as exc:
            pytest.fail(f"{exc}\n--- daphne log ---\n{server.output()[-6000:]}")
    assert isinstance(result, dict), result
    return result, shots


@pytest.mark.e2e
def test_two_people_chat_in_the_demo(artifacts: Path, tmp_path: Path) -> None:
    """Rooms, private messages, the counter stream and the server broadcast, as seen on screen."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    result, shots = run_scenario(artifacts, tmp_path)
    check_demo_result(result, shots)


def check_demo_result(result: dict[str, Any], shots: Path) -> None:
    """What the three people must have seen."""
    people = result["people"]
    assert set(people) == {"alice", "bob", "carol"}
    for name, seen in people.items():
        assert seen["state"] == "Connected", (name, seen)
        assert len(seen["connectionId"]) >= 22, (name, seen)
        assert seen["errorsOnPage"] == [], (name, seen)
        assert seen["browserProblems"] == [], (name, seen)
    assert len({seen["id"] for seen in people.values()}) == 3

    # Rooms: bob sees alice's line in #lobby; carol, who never joined, does not.
    assert "bob joined #lobby" in result["joinNoticeSeenByAlice"]
    assert "room #lobby" in result["roomMessageSeenByBob"]
    assert "alice" in result["roomMessageSeenByBob"]
    assert result["roomMessageSeenByCarol"] is False

    # Private: bob and alice see it, labelled with both names; carol does not.
    assert "alice → bob" in result["privateSeenByBob"]
    assert "alice → bob" in result["privateSeenByAlice"]
    assert "everyone: lunch at noon" in result["markerSeenByCarol"]
    assert result["privateSeenByCarol"] is False

    # The counter climbed, stopped when cancelled, and stayed stopped.
    counter = result["counter"]
    assert counter["first"] >= 2
    assert counter["atCancel"] > counter["first"]
    assert counter["later"] == counter["atCancel"]
    assert counter["status"] == f"cancelled at {counter['atCancel']}"

    # The sync view's broadcast reached everybody.
    for name in ("alice", "bob", "carol"):
        line = result["server"][name]
        assert "server broadcast" in line, (name, line)
        assert "asked by alice" in line, (name, line)

    for name in ("alice", "bob", "carol", "bob-counter-running"):
        assert (shots / f"{name}.png").stat().st_size > 10_000, name


@pytest.mark.e2e
def test_split_deployment_in_a_browser(artifacts: Path, tmp_path: Path) -> None:
    """gunicorn serves the site and negotiate, two Daphne workers the hub, Redis between."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    env = migrate_demo_db(tmp_path / "split.sqlite3")
    ports = [free_port(), free_port(), free_port()]
    site, workers = f"http://127.0.0.1:{ports[0]}", [f"http://127.0.0.1:{p}" for p in ports[1:]]
    shots = artifacts / "split-screenshots"
    with redis_url() as redis:
        env = {
            **env,
            "REDIS_URL": redis,
            "DEMO_WORKERS": ",".join(workers),
            "DEMO_SITE_URL": site,
        }
        settings = "demo_project.settings"
        app = "demo_project.asgi:application"
        with (
            gunicorn("demo_project.wsgi:application", settings, artifacts, env, ports[0]) as web,
            daphne(
                app,
                settings,
                artifacts,
                {**env, "SIGNALR_WORKER_URL": workers[0]},
                "split-a",
                ports[1],
            ) as a,
            daphne(
                app,
                settings,
                artifacts,
                {**env, "SIGNALR_WORKER_URL": workers[1]},
                "split-b",
                ports[2],
            ) as b,
        ):
            wait_for_load_reports(redis, 2)  # the redirect only offers workers that reported
            try:
                result = run_node(
                    "demo_browser.mjs",
                    web.url,
                    str(shots),
                    timeout=120,
                    env={"CHROMIUM_PATH": str(CHROMIUM)},
                )
            except pytest.fail.Exception as exc:
                logs = "\n".join(f"--- {s.log.name} ---\n{s.output()[-3000:]}" for s in (web, a, b))
                pytest.fail(f"{exc}\n{logs}")
            served = [
                a.output().count("WSCONNECT /hubs/chat"),
                b.output().count("WSCONNECT /hubs/chat"),
            ]
    check_demo_result(result, shots)
    # The three windows were spread over both workers by the negotiate redirect.
    assert all(count >= 1 for count in served), served
