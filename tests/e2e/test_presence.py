"""Presence and management across workers: gunicorn + two Daphne workers + Redis.

Official JavaScript clients (tests/e2e/js/presence.mjs) stay connected to both workers
while the WSGI site (sync hub context), `manage.py signalr` and the staff page ask about
them, close them, and notice a worker that stopped answering.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from signalr_django.presence.hooks import COUNTER_KEY
from tests.redis_server import redis_url
from tests.servers import ROOT, Server, daphne, free_port, gunicorn

from .conftest import JS_DIR, node_available

pytestmark = pytest.mark.e2e

HUB = "tests.testapp.hubs.CapsHub"


class Clients:
    """The Node process holding official client connections, driven line by line."""

    def __init__(self) -> None:
        node_available()
        self.proc = subprocess.Popen(
            ["node", str(JS_DIR / "presence.mjs")],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.ids: dict[str, str] = {}

    def __call__(self, timeout: float = 60, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no answer to {command} in {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"presence.mjs exited: {stderr[-2000:]}")
        reply: dict[str, Any] = json.loads(line)
        assert "error" not in reply, (command, reply)
        return reply

    def open(self, name: str, server: Server, user: str | None = None, **extra: Any) -> str:
        url = f"{server.url}/hubs/caps" + (f"?user={user}" if user else "")
        cid: str = self(op="open", name=name, url=url, **extra)["connectionId"]
        self.ids[name] = cid
        return cid

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self(op="quit", timeout=20)
            except Exception:
                self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    """A Redis server for this module."""
    with redis_url() as url:
        yield url


@pytest.fixture(scope="module", params=["pubsub", "classic"])
def cluster(
    request: pytest.FixtureRequest, redis: str, artifacts: Path, test_db: str
) -> Iterator[dict[str, Any]]:
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
        daphne("tests.asgi:application", settings, artifacts, env_a, "presence-a", ports[0]) as a,
        daphne("tests.asgi:application", settings, artifacts, env_b, "presence-b", ports[1]) as b,
        gunicorn("tests.wsgi:application", settings, artifacts, env) as web,
    ):
        yield {"a": a, "b": b, "web": web, "env": env}


@pytest.fixture
def clients(cluster: dict[str, Any]) -> Iterator[Clients]:
    """A fresh set of connections per test (closed afterwards)."""
    node = Clients()
    yield node
    node.close()
    # Later tests count connections: wait until both workers forgot these ones.
    eventually(lambda: presence(cluster), lambda out: out["count"]["value"] == 0)


def get_json(url: str, opener: urllib.request.OpenerDirector | None = None) -> Any:
    with (opener or urllib.request.build_opener()).open(url, timeout=60) as response:
        return json.loads(response.read())


def presence(cluster: dict[str, Any], **query: str) -> Any:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return get_json(f"{cluster['web'].url}/presence?{params}")


def eventually(read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 60) -> Any:
    """`read()` until `check` accepts it (state spreads between processes with delays)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s; last value {value!r}")
        time.sleep(0.2)


def manage(cluster: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **cluster["env"], "DJANGO_SETTINGS_MODULE": "tests.settings_redis"}
    return subprocess.run(
        [sys.executable, "-m", "django", "signalr", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_queries_from_the_wsgi_site_see_both_workers(
    cluster: dict[str, Any], clients: Clients
) -> None:
    """Counts, users, groups and a connection's groups, merged from the two workers."""
    a, b = cluster["a"], cluster["b"]
    clients.open("alice-a", a, "alice")
    clients.open("alice-b", b, "alice")
    bob = clients.open("bob-b", b, "bob")
    clients.open("anon-a", a)
    clients(op="invoke", name="alice-a", method="Join", args=["room"])
    clients(op="invoke", name="bob-b", method="Join", args=["room"])
    clients(op="invoke", name="bob-b", method="Join", args=["solo"])

    out = eventually(
        lambda: presence(cluster, user="alice", group="room", connection=bob),
        lambda out: out["count"]["value"] == 4,
    )
    assert out["count"]["complete"] is True
    assert out["count"]["workers_replied"] == sorted([a.url, b.url])
    assert out["count"]["workers_missing"] == []
    assert out["userOnline"]["value"] is True
    assert out["userCount"]["value"] == 2
    assert out["userConnections"]["value"] == sorted(
        [clients.ids["alice-a"], clients.ids["alice-b"]]
    )
    assert out["groupCount"]["value"] == 2
    assert out["connectionGroups"]["value"] == ["room", "solo"]
    assert out["groups"]["value"] == {"room": 2, "solo": 1}
    rows = {row["id"]: row for row in out["connections"]["value"]}
    assert rows[bob]["worker"] == b.url and rows[bob]["user"] == "bob"
    assert rows[clients.ids["anon-a"]]["user"] is None

    clients(op="stop", name="bob-b")
    out = eventually(
        lambda: presence(cluster, user="bob", group="room", connection=bob),
        lambda out: out["count"]["value"] == 3,
    )
    assert out["userOnline"]["value"] is False
    assert out["groupCount"]["value"] == 1
    assert out["connectionGroups"]["value"] is None
    assert out["groups"]["value"] == {"room": 1}


def test_a_sync_view_on_a_worker_asks_without_blocking_its_own_thread(
    cluster: dict[str, Any], clients: Clients
) -> None:
    """The sync hub context from a sync Django view that Daphne serves: the query's cache
    reads must not wait for the request's own (busy) sync thread."""
    a, b = cluster["a"], cluster["b"]
    clients.open("carol-b", b, "carol")
    out = eventually(
        lambda: get_json(f"{a.url}/presence?user=carol"),
        lambda out: out["userOnline"]["value"] is True,
    )
    assert out["count"]["complete"] is True


def test_close_a_connection_held_by_another_worker(
    cluster: dict[str, Any], clients: Clients
) -> None:
    """The WSGI site closes clients on either worker; allowReconnect makes them reconnect."""
    web = cluster["web"].url
    final = clients.open("final", cluster["b"], "carol")
    again = clients.open("again", cluster["a"], "carol", reconnect=True)

    out = get_json(f"{web}/presence/close?id={final}&reason=Maintenance")
    assert out == {"closed": True}
    closed = clients(op="wait", name="final", until="closed")
    assert "Maintenance" in closed["closedWith"], closed

    out = get_json(f"{web}/presence/close?id={again}&reconnect=1")
    assert out == {"closed": True}
    state = clients(op="wait", name="again", until="reconnected")
    assert state["connectionId"] != again and state["state"] == "Connected"

    assert get_json(f"{web}/presence/close?id=no-such-connection") == {"closed": False}


def test_management_command(cluster: dict[str, Any], clients: Clients) -> None:
    """`manage.py signalr` status, connections, groups and close, as tables and JSON."""
    a, b = cluster["a"], cluster["b"]
    dave = clients.open("dave-a", a, "dave")
    clients.open("erin-b", b, "erin")
    clients(op="invoke", name="dave-a", method="Join", args=["ops"])

    def status() -> Any:
        done = manage(cluster, "status", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    out = eventually(status, lambda out: sum(w["connections"] for w in out["value"]) == 2)
    assert out["complete"] is True
    assert sorted(w["name"] for w in out["value"]) == sorted([a.url, b.url])
    assert all(w["hubs"][HUB]["connections"] == 1 for w in out["value"])

    table = manage(cluster, "status")
    assert table.returncode == 0, table.stderr
    assert "WORKER" in table.stdout and a.url in table.stdout and HUB in table.stdout

    listed = manage(cluster, "connections", "CapsHub", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {row["user"] for row in json.loads(listed.stdout)["value"]} == {"dave", "erin"}
    users = manage(cluster, "connections", HUB, "--user", "dave")
    assert users.returncode == 0 and dave in users.stdout

    groups = manage(cluster, "groups", "CapsHub", "--json")
    assert json.loads(groups.stdout)["value"] == {"ops": 1}
    one = manage(cluster, "groups", "CapsHub", "--group", "ops", "--json")
    assert json.loads(one.stdout)["value"] == 1

    # Ids are base64url: one may start with "-", so options go first, then "--".
    closed = manage(cluster, "close", "--reason", "Bye", "--", "CapsHub", dave)
    assert closed.returncode == 0 and f"Closed {dave}" in closed.stdout, closed.stderr
    assert "Bye" in clients(op="wait", name="dave-a", until="closed")["closedWith"]
    unknown = manage(cluster, "close", "CapsHub", "nobody")
    assert unknown.returncode == 1 and "No worker holds connection 'nobody'" in unknown.stderr
    wrong = manage(cluster, "groups", "NoSuchHub")
    assert wrong.returncode == 1 and "No worker serves a hub named 'NoSuchHub'" in wrong.stderr


def test_staff_page_requires_staff_and_shows_live_numbers(
    cluster: dict[str, Any], clients: Clients
) -> None:
    """Anonymous: redirect to log in; not staff: 403; staff: the page and its JSON."""
    web = cluster["web"].url
    clients.open("frank-a", cluster["a"], "frank")
    clients.open("grace-b", cluster["b"], "grace")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.build_opener(NoRedirect()).open(f"{web}/signalr/status", timeout=60)
    assert anonymous.value.code == 302
    assert "/accounts/login/?next=/signalr/status" in anonymous.value.headers["Location"]

    plain = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    get_json(f"{web}/make-user?name=not-staff", plain)
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        plain.open(f"{web}/signalr/status", timeout=60)
    assert forbidden.value.code == 403

    staff = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    get_json(f"{web}/make-staff?name=staff-member", staff)
    with staff.open(f"{web}/signalr/status", timeout=60) as response:
        page = response.read().decode()
    assert "<h1>SignalR status</h1>" in page and 'id="initial"' in page
    assert "setTimeout(poll, 2000)" in page
    data = eventually(
        lambda: get_json(f"{web}/signalr/status?format=json", staff),
        lambda data: data["connections"] == 2,
    )
    assert data["complete"] is True
    assert {w["name"] for w in data["workers"]} == {cluster["a"].url, cluster["b"].url}
    assert data["hubs"][HUB]["connections"] == 2 and data["hubs"][HUB]["users"] == 2

    clients.open("heidi-b", cluster["b"], "heidi")
    clients(op="invoke", name="heidi-b", method="Join", args=["night"])
    data = eventually(
        lambda: get_json(f"{web}/signalr/status?format=json", staff),
        lambda data: data["connections"] == 3,
    )
    assert data["hubs"][HUB]["groups"] == {"night": 1}


def test_a_stopped_worker_is_reported_missing(cluster: dict[str, Any], clients: Clients) -> None:
    """A worker that does not answer within QUERY_TIMEOUT is named; the others still count."""
    a, b = cluster["a"], cluster["b"]
    clients.open("ivan-a", a, "ivan")
    clients.open("judy-b", b, "judy")
    eventually(lambda: presence(cluster, only="count"), lambda o: o["count"]["value"] == 2)

    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        out = presence(cluster, only="count")["count"]
        assert out == {
            "value": 1,
            "complete": False,
            "workers_replied": [a.url],
            "workers_missing": [b.url],
        }
        done = manage(cluster, "status")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "MISSING" in done.stdout and f"no reply from {b.url}" in done.stderr
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    out = eventually(lambda: presence(cluster, only="count"), lambda o: o["count"]["complete"])
    assert out["count"]["value"] == 2


def workers_counting(cluster: dict[str, Any], user: str) -> int:
    """The presence counter of `user` on PresenceHooksHub, read from the cache's Redis."""
    import hashlib

    import redis

    from signalr_django.lifetime.names import hub_key

    digest = hashlib.blake2b(user.encode(), digest_size=16).hexdigest()
    key = COUNTER_KEY.format(hub=hub_key("tests.testapp.hubs.PresenceHooksHub"), user=digest)
    client = redis.Redis.from_url(cluster["env"]["REDIS_URL"].rsplit("/", 1)[0] + "/1")
    try:
        value = client.get(f":1:{key}")
    finally:
        client.close()
    return int(value or 0)


def test_presence_hooks_fire_once_across_workers(cluster: dict[str, Any], clients: Clients) -> None:
    """First connection anywhere and last disconnection anywhere, whichever worker."""
    a, b = cluster["a"], cluster["b"]

    def open_hooked(name: str, server: Server, user: str) -> None:
        url = f"{server.url}/hubs/presence?user={user}"
        clients(op="open", name=name, url=url, listen=["Presence"])

    def events() -> list[list[str]]:
        received: list[list[str]] = clients(op="received", name="watcher")["received"]
        return received

    open_hooked("watcher", b, "watcher")
    eventually(events, lambda e: e == [["online", "watcher"]])
    open_hooked("alice-a", a, "alice")
    eventually(events, lambda e: len(e) == 2)
    open_hooked("alice-b", b, "alice")
    # Both workers count alice before one of them lets her go.
    eventually(lambda: workers_counting(cluster, "alice"), lambda n: n == 2)
    clients(op="stop", name="alice-a")
    open_hooked("bob-a", a, "bob")  # a later event: alice's would have come before it
    eventually(events, lambda e: len(e) == 3)
    clients(op="stop", name="alice-b")
    eventually(events, lambda e: len(e) == 4)
    assert events() == [
        ["online", "watcher"],
        ["online", "alice"],
        ["online", "bob"],
        ["offline", "alice"],
    ]


def test_async_context_in_a_worker_asks_and_closes_across_workers(
    cluster: dict[str, Any], clients: Clients
) -> None:
    """A hub method on one worker sees a user on the other and closes their connection."""
    a, b = cluster["a"], cluster["b"]
    clients(op="open", name="xavier", url=f"{a.url}/hubs/presence?user=xavier")
    yann = clients(op="open", name="yann", url=f"{b.url}/hubs/presence?user=yann")
    online = clients(op="invoke", name="xavier", method="Online", args=["yann"])["result"]
    assert online == {
        "value": True,
        "complete": True,
        "workers_replied": sorted([a.url, b.url]),
        "workers_missing": [],
    }
    nobody = clients(op="invoke", name="xavier", method="Online", args=["nobody"])["result"]
    assert nobody["value"] is False and nobody["complete"] is True
    kicked = clients(op="invoke", name="xavier", method="Kick", args=[yann["connectionId"]])
    assert kicked["result"] is True
    assert "Kicked" in clients(op="wait", name="yann", until="closed")["closedWith"]
    again = clients(op="invoke", name="xavier", method="Kick", args=[yann["connectionId"]])
    assert again["result"] is False
