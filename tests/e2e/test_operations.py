"""Metrics, health and the connection lifecycle log on the split deployment.

Two Daphne workers and gunicorn share Redis (reached through a proxy the test controls);
the official JavaScript client makes traffic; each worker's `/metrics` is parsed with
prometheus_client's own parser; readiness is read at the connection limit and while Redis
is unreachable; lifecycle lines are read from the workers' output.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.faultproxy import FaultProxy
from tests.redis_server import redis_url
from tests.servers import Server, daphne, free_port, gunicorn

from .conftest import node_available, run_node

pytestmark = pytest.mark.e2e

JS = Path(__file__).resolve().parent / "js" / "operations.mjs"
HUB = "tests.testapp.hubs.TestHub"


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    """A Redis server for this module."""
    with redis_url() as url:
        yield url


@pytest.fixture(scope="module")
def proxy(redis: str) -> Iterator[FaultProxy]:
    """A proxy in front of Redis, so a test can make it unreachable."""
    port = int(redis.rsplit(":", 1)[1].split("/")[0])
    fault = FaultProxy(port)
    try:
        yield fault
    finally:
        fault.close()


@pytest.fixture(scope="module")
def cluster(proxy: FaultProxy, artifacts: Path, test_db: str) -> Iterator[dict[str, Server]]:
    """Two Daphne workers (metrics and the lifecycle log on) and gunicorn, on one Redis."""
    ports = [free_port(), free_port()]
    env = {
        "SIGNALR_TEST_DB": test_db,
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
        "SIGNALR_TEST_LAYER": "pubsub",
        "SIGNALR_TEST_METRICS": "1",
        "SIGNALR_TEST_CONNECTION_LOG": "INFO",
    }
    settings = "tests.settings_redis"
    with (
        daphne("tests.asgi:application", settings, artifacts, env, "ops-a", ports[0]) as a,
        daphne("tests.asgi:application", settings, artifacts, env, "ops-b", ports[1]) as b,
        gunicorn("tests.wsgi:application", settings, artifacts, env) as web,
    ):
        yield {"a": a, "b": b, "web": web}


def node(name: str, base: str, **env: str) -> Any:
    """Run one scenario of operations.mjs; its JSON result."""
    import os
    import subprocess

    node_available()
    proc = subprocess.run(
        ["node", str(JS), name, base],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **env},
        cwd=JS.parent.parent.parent.parent,
    )
    if proc.returncode != 0:
        pytest.fail(f"node {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by (name, sorted labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(scraped: dict[Any, float], name: str, **labels: str) -> float:
    """The sample `name{labels}`, 0 when absent."""
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def get(url: str) -> tuple[int, str]:
    """Status and body of a GET (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(check: Any, timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy (generous timeout, no margins)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_metrics_count_traffic_on_each_worker(cluster: dict[str, Server]) -> None:
    """Connections, invocations by outcome, messages, backplane traffic, disconnect reasons."""
    a, b = cluster["a"], cluster["b"]
    out = node("traffic", a.url, WORKER_B=b.url, WSGI=cluster["web"].url)
    assert out["wsgi"] == 200
    assert [m[0] for m in out["received"]] == ["all", "view"]
    assert out["during"]["a"]["status"] == 200
    assert out["during"]["a"]["type"].startswith("text/plain; version=0.0.4")
    during_a = samples(out["during"]["a"]["text"])
    during_b = samples(out["during"]["b"]["text"])

    # Gauges, computed at scrape time: one connection on each worker, by transport.
    ws = {"hub": HUB, "transport": "WebSockets", "protocol": "json"}
    lp = {"hub": HUB, "transport": "LongPolling", "protocol": "json"}
    assert value(during_a, "signalr_connections", **ws) == 1
    assert value(during_b, "signalr_connections", **lp) == 1
    assert value(during_a, "signalr_outbound_queue_bytes", hub=HUB) >= 0
    assert value(during_a, "signalr_draining") == 0

    # Invocations by declared method and outcome; an unknown target is not a label.
    calls = "signalr_invocations_total"
    assert value(during_a, calls, hub=HUB, method="echo", outcome="ok") == 3
    assert value(during_a, calls, hub=HUB, method="add", outcome="ok") == 1
    assert value(during_a, calls, hub=HUB, method="fail", outcome="error") == 1
    failed_hub = {"hub": HUB, "method": "fail_hub", "outcome": "hub_error"}
    assert value(during_a, "signalr_invocations_total", **failed_hub) == 1
    unknown = {"hub": HUB, "method": "(unknown)", "outcome": "not_found"}
    assert value(during_a, "signalr_invocations_total", **unknown) == 1
    assert not any("NoSuchMethod" in str(key) for key in during_a)
    durations = "signalr_invocation_duration_seconds"
    assert value(during_a, f"{durations}_count", hub=HUB, method="echo") == 3
    inf = {"hub": HUB, "method": "echo", "le": "+Inf"}
    assert value(during_a, "signalr_invocation_duration_seconds_bucket", **inf) == 3
    assert value(during_b, "signalr_invocations_total", hub=HUB, method="echo", outcome="ok") == 1

    # Messages and bytes both ways; the backplane carried the broadcasts to worker b.
    assert value(during_a, "signalr_messages_received_total", hub=HUB) >= 8
    assert value(during_a, "signalr_bytes_received_total", hub=HUB) > 100
    assert value(during_a, "signalr_messages_sent_total", hub=HUB) >= 8
    assert value(during_a, "signalr_connects_total", **ws) == 1
    assert value(during_a, "signalr_backplane_publishes_total") >= 1
    assert value(during_b, "signalr_backplane_receives_total") >= 2  # worker a's and the WSGI's
    assert value(during_b, "signalr_messages_sent_total", hub=HUB) >= 3

    # After the scenario: the connections are gone with their reasons.
    def ended() -> dict[Any, float] | None:
        now_a, now_b = samples(a.get("/metrics")), samples(b.get("/metrics"))
        reasons_a = {
            r: value(now_a, "signalr_disconnects_total", hub=HUB, reason=r)
            for r in ("client_closed", "server_aborted")
        }
        gone = value(now_b, "signalr_disconnects_total", hub=HUB, reason="transport_closed")
        if reasons_a == {"client_closed": 1, "server_aborted": 1} and gone == 1:
            return now_a
        return None

    after = wait_until(ended)
    assert after, (a.get("/metrics"), b.get("/metrics"))
    assert value(after, "signalr_connections", **ws) == 0


def test_lifecycle_log_connect_close_and_origin_refusal(cluster: dict[str, Server]) -> None:
    """INFO lines for connect and close (with reason) and for a refused Origin; no token."""
    a = cluster["a"]
    out = node("badOrigin", a.url)
    assert out["preflight"] == 403
    expected = ("reason=origin", "reason=client_closed", "reason=server_aborted")
    log = wait_until(lambda: all(e in a.output() for e in expected) and a.output())
    assert log, a.output()[-3000:]
    connected = re.findall(r"Connected (\S+) hub=(\S+) transport=(\S+) protocol=(\S+)", log)
    assert (HUB, "WebSockets", "json") in {c[1:] for c in connected}
    assert re.search(r"Closed \S+ hub=\S+TestHub transport=WebSockets .*reason=client_closed", log)
    assert re.search(r"Closed \S+ .*reason=server_aborted", log)
    refusal = next(line for line in log.splitlines() if "reason=origin" in line)
    assert "Refused preflight connection to hub=" in refusal
    assert "origin=http://evil.example" in refusal
    # Connection ids are logged without the token part (no dots), tokens never.
    assert all("." not in c[0] for c in connected)
    assert "access_token" not in log and "id=" not in log


def test_forwarded_requests_are_counted(cluster: dict[str, Server]) -> None:
    """Long polling through both workers in turn: the relayed requests show up by kind."""
    a, b = cluster["a"], cluster["b"]
    env = {"WORKER_B": b.url, "WSGI": cluster["web"].url, "SIGNALR_TRANSPORT": "LongPolling"}
    out = run_node("run.mjs", "roundRobin", a.url, env=env)
    assert out["result"] == "rr:q"
    scraped = [samples(a.get("/metrics")), samples(b.get("/metrics"))]
    forwarded = {
        kind: sum(value(s, "signalr_forwarded_requests_total", request=kind) for s in scraped)
        for kind in ("LongPolling", "send", "delete")
    }
    assert forwarded["LongPolling"] >= 1, forwarded
    assert forwarded["send"] >= 1, forwarded


def test_readiness_at_the_connection_limit(
    proxy: FaultProxy, artifacts: Path, test_db: str
) -> None:
    """Ready until MAX_CONNECTIONS is reached, 503 `connection_limit` then, ready again after."""
    env = {
        "SIGNALR_TEST_DB": test_db,
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
        "SIGNALR_TEST_MAX_CONNECTIONS": "2",
        "SIGNALR_TEST_METRICS": "1",
        "SIGNALR_TEST_CONNECTION_LOG": "INFO",
    }
    settings = "tests.settings_redis"
    with daphne("tests.asgi:application", settings, artifacts, env, "ops-limit") as srv:
        out = node("readinessAtLimit", srv.url)
        scraped = samples(srv.get("/metrics"))
        log = srv.output()
    assert out["before"] == {"status": "ready"}
    assert out["atLimit"] == {
        "status": 503,
        "body": {"status": "unavailable", "reasons": ["connection_limit"]},
    }
    assert out["refused"] is True
    assert out["after"]["status"] == 200
    assert out["live"] == 200
    assert value(scraped, "signalr_limits_hit_total", limit="MAX_CONNECTIONS") >= 1
    assert value(scraped, "signalr_connections_refused_total", hub=HUB, reason="limit") >= 1
    assert "reason=limit (MAX_CONNECTIONS reached)" in log


def test_readiness_fails_while_redis_is_unreachable(
    cluster: dict[str, Server], proxy: FaultProxy
) -> None:
    """The backplane does not answer: 503 `backplane`; ready again once Redis is back."""
    a = cluster["a"]
    assert get(a.url + "/health/ready") == (200, '{"status":"ready"}')
    proxy.stall()
    try:
        status, body = get(a.url + "/health/ready")
        assert status == 503, body
        assert json.loads(body) == {"status": "unavailable", "reasons": ["backplane"]}
        assert get(a.url + "/health/live")[0] == 200  # liveness does not depend on Redis
    finally:
        proxy.restore()
    assert wait_until(lambda: get(a.url + "/health/ready")[0] == 200)
    assert value(samples(a.get("/metrics")), "signalr_backplane_errors_total") >= 1
