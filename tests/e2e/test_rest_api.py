"""The REST management API on the split deployment: gunicorn + two Daphne workers + Redis.

A Node process (tests/e2e/js/rest.mjs: `fetch` and a token signed with node:crypto, no
Python) calls the API, mostly on the gunicorn site; official JavaScript clients connected
to both workers (tests/e2e/js/presence.mjs) receive the messages, join and leave groups and
get closed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import redis_url
from tests.servers import ROOT, Server, daphne, free_port, gunicorn

from .conftest import JS_DIR, node_available
from .test_presence import Clients, eventually

pytestmark = pytest.mark.e2e

KEY = "rest-api-test-key"  # tests/settings.py
HUB = "/api/hubs/caps"


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    """A Redis server for this module."""
    with redis_url() as url:
        yield url


@pytest.fixture(scope="module", params=["pubsub", "classic"])
def cluster(
    request: pytest.FixtureRequest, redis: str, artifacts: Path, test_db: str
) -> Iterator[dict[str, Server]]:
    """Two Daphne workers and gunicorn sharing a Redis channel layer and cache."""
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
        daphne("tests.asgi:application", settings, artifacts, env_a, "rest-a", ports[0]) as a,
        daphne("tests.asgi:application", settings, artifacts, env_b, "rest-b", ports[1]) as b,
        gunicorn("tests.wsgi:application", settings, artifacts, env) as web,
    ):
        yield {"a": a, "b": b, "web": web}


@pytest.fixture
def clients(cluster: dict[str, Server]) -> Iterator[Clients]:
    """Official clients, closed after the test."""
    node = Clients()
    yield node
    node.close()


def rest(cluster: dict[str, Server], *requests: dict[str, Any]) -> list[dict[str, Any]]:
    """Run `requests` (on the gunicorn site unless they name a `server`) from Node, in order."""
    node_available()
    for request in requests:
        request["base"] = cluster[request.pop("server", "web")].url
    proc = subprocess.run(
        ["node", str(JS_DIR / "rest.mjs")],
        cwd=ROOT,
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "REST_KEY": KEY},
    )
    if proc.returncode != 0:
        for name, server in cluster.items():
            print(f"--- {name} ---\n{server.output()[-3000:]}")
        raise AssertionError(f"rest.mjs failed: {proc.stderr[-3000:]}")
    results: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def statuses(cluster: dict[str, Server], *requests: dict[str, Any]) -> list[int]:
    return [r["status"] for r in rest(cluster, *requests)]


def send(path: str, label: str, **extra: Any) -> dict[str, Any]:
    body = {"target": "Receive", "arguments": [label, {"n": 1}]}
    return {"method": "POST", "path": HUB + path, "body": body, **extra}


def head(path: str) -> dict[str, Any]:
    return {"method": "HEAD", "path": HUB + path}


def labels(clients: Clients, name: str) -> list[str]:
    return sorted(args[0] for args in clients(op="received", name=name)["received"])


def wait_labels(clients: Clients, name: str, expected: list[str]) -> None:
    """Until `name` received exactly `expected` (sorted): deliveries cross processes."""
    eventually(lambda: labels(clients, name), lambda got: got == sorted(expected))


def test_sends_reach_clients_on_both_workers(cluster: dict[str, Server], clients: Clients) -> None:
    """All (with excluded), user, group (with excluded), connection; on gunicorn and a worker."""
    a, b = cluster["a"], cluster["b"]
    listen = {"listen": ["Receive"]}
    clients.open("ann-a", a, "ann", **listen)
    clients.open("ann-b", b, "ann", **listen)
    bob = clients.open("bob-b", b, "bob", **listen)
    anon = clients.open("anon-a", a, **listen)
    clients(op="invoke", name="bob-b", method="Join", args=["room"])
    clients(op="invoke", name="ann-a", method="Join", args=["room"])

    assert (
        statuses(
            cluster,
            send("/:send", "all"),
            send("/:send", "all-but-anon", query={"excluded": [anon]}),
            send("/users/ann/:send", "user"),
            send("/groups/room/:send", "group"),
            send("/groups/room/:send", "group-but-bob", query={"excluded": bob}),
            send(f"/connections/{anon}/:send", "connection"),
            send("/users/bob/:send", "from-worker", server="a"),
            {**send("/:send", "hub-name-case"), "path": "/api/hubs/CAPS/:send"},
        )
        == [202] * 8
    )

    wait_labels(clients, "anon-a", ["all", "connection", "hub-name-case"])
    wait_labels(
        clients,
        "ann-a",
        ["all", "all-but-anon", "user", "group", "group-but-bob", "hub-name-case"],
    )
    wait_labels(clients, "ann-b", ["all", "all-but-anon", "user", "hub-name-case"])
    wait_labels(clients, "bob-b", ["all", "all-but-anon", "group", "from-worker", "hub-name-case"])
    received = clients(op="received", name="anon-a")["received"]
    assert ["connection", {"n": 1}] in received


def test_group_membership_and_existence_checks(
    cluster: dict[str, Server], clients: Clients
) -> None:
    """Connections and users join and leave groups across workers; HEAD answers 200/404."""
    a, b = cluster["a"], cluster["b"]
    listen = {"listen": ["Receive"]}
    cat_a = clients.open("cat-a", a, "cat", **listen)
    cat_b = clients.open("cat-b", b, "cat", **listen)
    dan = clients.open("dan-a", a, "dan", **listen)

    assert statuses(
        cluster,
        head("/users/cat"),
        head("/users/nobody"),
        head(f"/connections/{cat_b}"),
        head("/connections/no-such-connection"),
        head("/groups/club"),
        {"method": "PUT", "path": f"{HUB}/groups/club/connections/{dan}"},
        {"method": "PUT", "path": f"{HUB}/users/cat/groups/club"},
        head("/groups/club"),
        head("/users/cat/groups/club"),
        head("/users/dan/groups/other"),
        send("/groups/club/:send", "club-1"),
    ) == [200, 404, 200, 404, 404, 200, 200, 200, 200, 404, 202]
    for name in ("cat-a", "cat-b", "dan-a"):
        wait_labels(clients, name, ["club-1"])

    assert statuses(
        cluster,
        {"method": "DELETE", "path": f"{HUB}/users/cat/groups/club"},
        head("/users/cat/groups/club"),
        send("/groups/club/:send", "club-2"),
        {"method": "DELETE", "path": f"{HUB}/groups/club/connections/{dan}"},
        head("/groups/club"),
        {"method": "PUT", "path": f"{HUB}/groups/a/connections/{cat_a}"},
        {"method": "PUT", "path": f"{HUB}/groups/b/connections/{cat_a}"},
        {"method": "DELETE", "path": f"{HUB}/connections/{cat_a}/groups"},
        head("/groups/a"),
        {"method": "PUT", "path": f"{HUB}/users/cat/groups/x"},
        {"method": "PUT", "path": f"{HUB}/users/dan/groups/x"},
        {"method": "DELETE", "path": f"{HUB}/users/cat/groups"},
        head("/users/cat/groups/x"),
        head("/users/dan/groups/x"),
        {"method": "PUT", "path": f"{HUB}/groups/x/connections/no-such-connection"},
    ) == [204, 404, 202, 200, 404, 200, 200, 200, 404, 200, 200, 204, 404, 200, 404]
    wait_labels(clients, "dan-a", ["club-1", "club-2"])
    # Nothing more reached cat: its connections left the group before club-2.
    assert labels(clients, "cat-a") == ["club-1"]
    assert labels(clients, "cat-b") == ["club-1"]


def test_close_connections_with_a_reason(cluster: dict[str, Server], clients: Clients) -> None:
    """DELETE a connection on the other worker; close every connection of a user but one."""
    a, b = cluster["a"], cluster["b"]
    eve = clients.open("eve-b", b, "eve")
    keep = clients.open("fay-a", a, "fay")
    clients.open("fay-b", b, "fay")
    clients.open("fay-a2", a, "fay")

    results = rest(
        cluster,
        {
            "method": "DELETE",
            "path": f"{HUB}/connections/{eve}",
            "query": {"reason": "Maintenance"},
        },
        {"method": "DELETE", "path": f"{HUB}/connections/no-such-connection"},
        {
            "method": "POST",
            "path": f"{HUB}/users/fay/:closeConnections",
            "query": {"reason": "Logged out", "excluded": keep},
        },
    )
    assert [r["status"] for r in results] == [200, 200, 204]
    closed = clients(op="wait", name="eve-b", until="closed")
    assert "Maintenance" in closed["closedWith"]
    for name in ("fay-b", "fay-a2"):
        assert "Logged out" in clients(op="wait", name=name, until="closed")["closedWith"]
    eventually(lambda: statuses(cluster, head(f"/connections/{eve}")), lambda s: s == [404])
    # The same answers from the API mounted on a worker (the ASGI site's Django views).
    assert statuses(
        cluster,
        head(f"/connections/{keep}"),
        head("/users/fay"),
        {**head(f"/connections/{keep}"), "server": "b"},
        {**head(f"/connections/{eve}"), "server": "b"},
        {**head("/users/fay"), "server": "a"},
    ) == [200, 200, 200, 404, 200]


def test_authentication_and_bad_input(cluster: dict[str, Server]) -> None:
    """401 without a token, with a wrong key, expired, or for another URL; 400 with ErrorDetail."""
    results = rest(
        cluster,
        send("/:send", "x", token="none"),
        send("/:send", "x", token="wrongKey"),
        send("/:send", "x", token="expired"),
        send("/:send", "x", token="otherUrl"),
        {"method": "POST", "path": f"{HUB}/:send", "body": {"arguments": []}},
        {"method": "POST", "path": "/api/hubs/unknown/:send", "body": {"target": "R"}},
        {"method": "GET", "path": f"{HUB}/users/ann"},
        {"method": "HEAD", "path": "/api/health", "token": "none"},
    )
    assert [r["status"] for r in results] == [401, 401, 401, 401, 400, 404, 405, 200]
    assert results[0]["headers"]["www-authenticate"] == "Bearer"
    assert "signature" in results[1]["body"]["message"]
    assert "expired" in results[2]["body"]["message"]
    assert "audience" in results[3]["body"]["message"]
    assert results[4]["body"]["target"] == "target"
    assert results[5]["body"]["code"] == "NotFound"
    assert results[6]["headers"]["allow"] == "HEAD"


def test_curl_and_openssl_broadcast(cluster: dict[str, Server], clients: Clients) -> None:
    """The shell example of docs/rest-api.md: a token from openssl, the request from curl."""
    clients.open("gil-a", cluster["a"], "gil", listen=["Receive"])
    clients.open("gil-b", cluster["b"], "gil", listen=["Receive"])
    script = Path(__file__).resolve().parent / "rest_send.sh"
    args = [str(script), cluster["web"].url, KEY, "caps", "Receive", '["from curl", 2]']
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "202", proc.stderr
    for name in ("gil-a", "gil-b"):
        eventually(
            lambda name=name: clients(op="received", name=name)["received"],
            lambda got: got == [["from curl", 2]],
        )
