"""Several Daphne workers and a gunicorn site sharing Redis, driven by the official client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import redis_url
from tests.servers import Server, daphne, gunicorn

from .conftest import run_node

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    """A Redis server for this module."""
    with redis_url() as url:
        yield url


@pytest.fixture(scope="module", params=["pubsub", "classic"])
def cluster(
    request: pytest.FixtureRequest, redis: str, artifacts: Path, test_db: str
) -> Iterator[dict[str, Server]]:
    """Two Daphne workers and gunicorn on one Redis channel layer."""
    env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": redis, "SIGNALR_TEST_LAYER": request.param}
    settings = "tests.settings_redis"
    with (
        daphne("tests.asgi:application", settings, artifacts, env, name="worker-a") as a,
        daphne("tests.asgi:application", settings, artifacts, env, name="worker-b") as b,
        gunicorn("tests.wsgi:application", settings, artifacts, env) as web,
    ):
        yield {"a": a, "b": b, "web": web}


def run(name: str, cluster: dict[str, Server], **env: str) -> Any:
    full = {"WORKER_B": cluster["b"].url, "WSGI": cluster["web"].url, **env}
    try:
        return run_node("run.mjs", name, cluster["a"].url, env=full)
    except pytest.fail.Exception:
        for key, server in cluster.items():
            print(f"--- {key} ---\n{server.output()[-3000:]}")
        raise


def test_every_target_crosses_workers(cluster: dict[str, Server]) -> None:
    """all/others/client(s)/all_except/group(s)/users, remote group changes, WSGI sends."""
    out = run("crossWorker", cluster)
    assert out["result"] == "from c:q"
    assert out["unknown"] == "gone: Connection 'missing-connection' does not exist."
    assert [m[1] for m in out["c"]] == [
        "all",
        "others",
        "client",
        "clients",
        "allExcept",
        "group",
        "othersInGroup",
        "groups",
        "wsgi",
        "wsgi-client",
    ]


@pytest.mark.parametrize("transport", ["LongPolling", "ServerSentEvents", "WebSockets"])
def test_no_sticky_sessions(cluster: dict[str, Server], transport: str) -> None:
    """Every request goes to the next worker in turn; the connection works regardless."""
    out = run("roundRobin", cluster, SIGNALR_TRANSPORT=transport)
    assert out["info"]["transport"] == transport
    assert sorted(m[1] for m in out["received"]) == ["direct", "from b"]
    assert out["result"] == "rr:q"
    assert min(out["counts"]) >= 1, out["counts"]
