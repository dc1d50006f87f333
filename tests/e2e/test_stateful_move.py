"""Stateful reconnect on any worker: two Daphne workers on Redis, round-robin routing.

The official JS client (`withStatefulReconnect`) sends numbered messages while another
client sends numbered messages to it by connection id; its socket is dropped every few
seconds (each resume lands on the other worker, which takes the connection over), or its
worker gets SIGTERM (the client resumes on the other one). Nothing may be lost or doubled
either way, and the connection keeps its id throughout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import run_node
from tests.redis_server import redis_url
from tests.servers import daphne

pytestmark = pytest.mark.e2e

DURATION = int(os.environ.get("SIGNALR_TEST_MOVE_SECONDS", "60"))


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    with redis_url() as url:
        yield url


@pytest.fixture
def workers(redis: str, artifacts: Path, test_db: str) -> Iterator[dict[str, Any]]:
    """Two fresh workers (the drain test stops one)."""
    env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": redis, "SIGNALR_TEST_DRAIN_TIMEOUT": "30"}
    settings = "tests.settings_redis"
    with (
        daphne("tests.asgi:application", settings, artifacts, env, name="move-a") as a,
        daphne("tests.asgi:application", settings, artifacts, env, name="move-b") as b,
    ):
        yield {"a": a, "b": b}


def run(mode: str, workers: dict[str, Any], seconds: int, protocol: str = "json") -> dict[str, Any]:
    a, b = workers["a"], workers["b"]
    env = {
        "WORKER_A": a.url,
        "WORKER_B": b.url,
        "WORKER_A_PID": str(a.proc.pid),
        "DURATION": str(seconds),
        "SIGNALR_PROTOCOL": protocol,
    }
    out: dict[str, Any] = run_node("stateful_move.mjs", mode, timeout=seconds + 180, env=env)
    # Where it failed, what the workers logged says why.
    out["logs"] = {name: w.output()[-4000:] for name, w in workers.items()}
    return out


def assert_exactly_once(out: dict[str, Any]) -> None:
    assert out["closedWith"] is None, out
    assert out["errors"] == [], out
    assert out["sameConnection"] is True, out
    assert out["sent"] > 0 and out["ticked"] > 0, out
    none = {"missing": 0, "duplicated": 0, "unexpected": 0}
    assert out["recorded"] == none, out  # client -> server, answered once each
    assert out["ticks"] == none, out  # server -> client, from the other worker


@pytest.mark.timeout(DURATION + 300)
def test_socket_dropped_every_few_seconds_under_traffic(workers: dict[str, Any]) -> None:
    out = run("drops", workers, DURATION)
    assert_exactly_once(out)
    assert out["drops"] >= 3, out
    assert out["workers"] == 2, out  # the connection really moved between the workers


@pytest.mark.timeout(300)
def test_binary_protocol_moves_too(workers: dict[str, Any]) -> None:
    """MessagePack records (bytes) cross the channel layer unchanged."""
    out = run("drops", workers, 12, protocol="messagepack")
    assert_exactly_once(out)
    assert out["workers"] == 2, out


@pytest.mark.timeout(300)
def test_owner_sigterm_resumes_on_the_other_worker(workers: dict[str, Any]) -> None:
    out = run("drain", workers, 10)
    assert_exactly_once(out)
    assert out["killed"] == workers["a"].proc.pid, out
    assert out["lastWorker"] == workers["b"].proc.pid, out
    # The drained worker shut down once its connection had moved.
    assert workers["a"].proc.wait(60) is not None
