"""Several Daphne workers and a gunicorn site sharing Redis, driven by the official client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import redis_url
from tests.servers import Server, daphne, free_port, gunicorn

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
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    env = {
        "SIGNALR_TEST_DB": test_db,
        "REDIS_URL": redis,
        "SIGNALR_TEST_LAYER": request.param,
        "SIGNALR_TEST_WORKERS": ",".join(urls),
    }
    settings = "tests.settings_redis"
    env_a = {**env, "SIGNALR_WORKER_URL": urls[0]}
    env_b = {**env, "SIGNALR_WORKER_URL": urls[1]}
    with (
        daphne("tests.asgi:application", settings, artifacts, env_a, "worker-a", ports[0]) as a,
        daphne("tests.asgi:application", settings, artifacts, env_b, "worker-b", ports[1]) as b,
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


def test_client_result_from_the_wsgi_site(cluster: dict[str, Server]) -> None:
    """A gunicorn view asks a client on a Daphne worker for a result (sync hub context)."""
    out = run("clientResultFromView", cluster, ASK_SITE=cluster["web"].url)
    assert out["answered"] == {"status": 200, "body": {"value": "answer to q1"}}
    assert out["failed"]["status"] == 502 and "no answer here" in out["failed"]["body"]["error"]
    assert out["gone"]["status"] == 404


@pytest.mark.parametrize("transport", ["LongPolling", "ServerSentEvents", "WebSockets"])
def test_no_sticky_sessions(cluster: dict[str, Server], transport: str) -> None:
    """Every request goes to the next worker in turn; the connection works regardless."""
    out = run("roundRobin", cluster, SIGNALR_TRANSPORT=transport)
    assert out["info"]["transport"] == transport
    assert sorted(m[1] for m in out["received"]) == ["direct", "from b"]
    assert out["result"] == "rr:q"
    assert min(out["counts"]) >= 1, out["counts"]


@pytest.mark.parametrize("transport", ["LongPolling", "ServerSentEvents"])
@pytest.mark.parametrize("auth", ["session", "bearer"])
def test_no_sticky_sessions_with_authenticated_users(
    cluster: dict[str, Server], transport: str, auth: str
) -> None:
    """Session-cookie and bearer clients keep their identity on forwarded requests."""
    out = run("roundRobinAuth", cluster, SIGNALR_TRANSPORT=transport, AUTH_MODE=auth)
    assert out["who"] == [f"rr-{auth}"] * 4
    assert out["admin"] == "admin ok"  # the owner loaded the user with its permissions
    assert out["info"]["transport"] == transport
    assert out["info"]["user"] == out["id"]
    assert out["received"] == ["caller", "direct", "user"]
    assert min(out["counts"]) >= 3, out["counts"]


def test_negotiate_on_the_wsgi_site_redirects_to_the_least_loaded_worker(
    cluster: dict[str, Server],
) -> None:
    """The WSGI site negotiates with the session and sends clients to the workers."""
    out = run("redirect", cluster)
    workers = {cluster["a"].url, cluster["b"].url}
    assert set(out["workers"]) == workers, out
    assert out["who"] == "redirected-user"
    assert "Status code '401'" in out["anonymousAuthHub"]


def test_connection_limit_refuses_with_503(redis: str, artifacts: Path, test_db: str) -> None:
    """Past MAX_CONNECTIONS, negotiate answers 503 with Retry-After; the worker reports it."""
    env = {
        "SIGNALR_TEST_DB": test_db,
        "REDIS_URL": redis,
        "SIGNALR_TEST_MAX_CONNECTIONS": "2",
    }
    with daphne("tests.asgi:application", "tests.settings_redis", artifacts, env, "limited") as srv:
        out = run_node("run.mjs", "connectionLimit", srv.url)
    assert out["third"] == {"status": 503, "retryAfter": "5"}
    assert out["upgradeRefused"] is True
    assert out["afterLeaving"] == "ok"
