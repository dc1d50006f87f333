"""Metrics counters, the Prometheus collector and the lifecycle log, without a server."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from signalr_django.core import lifecycle
from signalr_django.dispatch.dispatcher import ClientClosed
from signalr_django.dispatch.handler import ConnectionRefused, ServerShutdown
from signalr_django.exceptions import ProtocolError
from signalr_django.lifetime import manager as lifetime_manager
from signalr_django.metrics import counters
from signalr_django.metrics.collector import SignalRCollector
from signalr_django.metrics.counters import Histogram, Metrics
from signalr_django.protocol import Close


class ChatHub:
    """Stands for a hub class (only its name is read)."""


HUB = f"{__name__}.ChatHub"


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(SignalRCollector(metrics))
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


def test_histogram_buckets_are_cumulative_with_an_inf_bucket() -> None:
    """Each observation lands in its first bound >= value; scrape sums them up."""
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert histogram.count == 4
    assert histogram.sum == pytest.approx(3.65)


def test_rare_events_are_not_counted_while_disabled() -> None:
    """With METRICS off, the counters stay empty (hot paths check `enabled` themselves)."""
    metrics = Metrics()
    metrics.count_connect(ChatHub, "WebSockets", "json")
    metrics.count_disconnect(ChatHub, "timeout")
    metrics.count_limit("MAX_CONNECTIONS")
    metrics.count_publish()
    metrics.observe_roundtrip(0.01)
    assert metrics.connects == {} and metrics.disconnects == {} and metrics.limits == {}
    assert metrics.backplane_publishes == 0 and metrics.roundtrip.count == 0


def test_collector_exposes_every_counter_under_its_conventional_name() -> None:
    """Counters get `_total`, durations `_seconds` histograms; hubs are dotted paths."""
    metrics = Metrics()
    metrics.enabled = True
    metrics.count_connect(ChatHub, "WebSockets", "json")
    metrics.count_disconnect(ChatHub, "slow_client")
    metrics.count_refused(HUB, "origin")
    metrics.count_invocation(ChatHub, "send", "ok", 0.002)
    metrics.count_invocation(ChatHub, "send", "ok", 0.2)
    metrics.count_invocation(ChatHub, "send", "bind_error", -1.0)
    metrics.count_received(ChatHub, 3, 120)
    metrics.count_sent(ChatHub, 1, 40)
    metrics.count_slow_client(ChatHub)
    metrics.count_limit("OUTBOUND_BUFFER_LIMIT")
    metrics.count_publish()
    metrics.count_receive()
    metrics.count_backplane_error()
    metrics.observe_roundtrip(0.003)
    metrics.count_forwarded("LongPolling")
    got = scrape(metrics)
    connect = {"hub": HUB, "transport": "WebSockets", "protocol": "json"}
    assert got[key("signalr_connects_total", **connect)] == 1
    assert got[key("signalr_disconnects_total", hub=HUB, reason="slow_client")] == 1
    assert got[key("signalr_connections_refused_total", hub=HUB, reason="origin")] == 1
    assert got[key("signalr_invocations_total", hub=HUB, method="send", outcome="ok")] == 2
    bind = key("signalr_invocations_total", hub=HUB, method="send", outcome="bind_error")
    assert got[bind] == 1
    durations = "signalr_invocation_duration_seconds"
    assert got[key(f"{durations}_count", hub=HUB, method="send")] == 2  # refusals not timed
    assert got[key(f"{durations}_bucket", hub=HUB, method="send", le="0.0025")] == 1
    assert got[key(f"{durations}_bucket", hub=HUB, method="send", le="0.25")] == 2
    assert got[key("signalr_messages_received_total", hub=HUB)] == 3
    assert got[key("signalr_bytes_received_total", hub=HUB)] == 120
    assert got[key("signalr_messages_sent_total", hub=HUB)] == 1
    assert got[key("signalr_bytes_sent_total", hub=HUB)] == 40
    assert got[key("signalr_slow_clients_closed_total", hub=HUB)] == 1
    assert got[key("signalr_limits_hit_total", limit="OUTBOUND_BUFFER_LIMIT")] == 1
    assert got[key("signalr_backplane_publishes_total")] == 1
    assert got[key("signalr_backplane_receives_total")] == 1
    assert got[key("signalr_backplane_errors_total")] == 1
    assert got[key("signalr_backplane_roundtrip_seconds_count")] == 1
    assert got[key("signalr_forwarded_requests_total", request="LongPolling")] == 1


def test_gauges_are_read_from_the_live_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections by hub/transport/protocol and queued bytes, computed at scrape time."""

    def connection(transport: str, protocol: str, pending: int) -> Any:
        return SimpleNamespace(
            hub_cls=ChatHub,
            transport=transport,
            protocol=SimpleNamespace(name=protocol),
            outbound=SimpleNamespace(pending=lambda: pending),
            messages_received=2,
            bytes_received=100,
            messages_sent=3,
            bytes_sent=30,
        )

    fake = SimpleNamespace(
        connections={
            "a": connection("WebSockets", "json", 10),
            "b": connection("WebSockets", "json", 0),
            "c": connection("LongPolling", "messagepack", 5),
        }
    )
    monkeypatch.setattr(lifetime_manager, "_managers", {ChatHub: fake})
    ended = Metrics()
    ended.count_sent(ChatHub, 10, 1000)  # connections that ended before
    got = scrape(ended)
    ws = {"hub": HUB, "transport": "WebSockets", "protocol": "json"}
    lp = {"hub": HUB, "transport": "LongPolling", "protocol": "messagepack"}
    assert got[key("signalr_connections", **ws)] == 2
    assert got[key("signalr_connections", **lp)] == 1
    assert got[key("signalr_outbound_queue_bytes", hub=HUB)] == 15
    assert got[key("signalr_draining")] == 0
    # Traffic: what ended connections sent, plus what the live ones count on themselves.
    assert got[key("signalr_messages_sent_total", hub=HUB)] == 10 + 3 * 3
    assert got[key("signalr_bytes_sent_total", hub=HUB)] == 1000 + 3 * 30
    assert got[key("signalr_messages_received_total", hub=HUB)] == 3 * 2


def fake_connection(aborted: bool = False, reason: str | None = None) -> Any:
    return SimpleNamespace(
        messages_received=0,
        bytes_received=0,
        messages_sent=0,
        bytes_sent=0,
        aborted=aborted,
        close_reason=reason,
        connection_id="abc123.1700000000.0.owner.signature",
        hub_cls=ChatHub,
        transport="WebSockets",
        protocol=SimpleNamespace(name="json"),
        user_identifier="alice",
    )


@pytest.mark.parametrize(
    ("failure", "aborted", "expected"),
    [
        (None, False, "transport_closed"),
        (ClientClosed(None), False, "client_closed"),
        (ServerShutdown(), False, "shutdown"),
        (ConnectionRefused(Close("no"), ValueError()), False, "refused"),
        (ProtocolError("bad"), False, "protocol_error"),
        (RuntimeError("boom"), False, "error"),
        (None, True, "timeout"),
    ],
)
def test_disconnect_reasons(failure: BaseException | None, aborted: bool, expected: str) -> None:
    """A server-side abort names its own reason; otherwise the failure decides."""
    connection = fake_connection(aborted, "timeout" if aborted else None)
    assert lifecycle.disconnect_reason(connection, failure) == expected
    assert expected in counters.DISCONNECT_REASONS


def test_lifecycle_lines_name_the_connection_without_its_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connect and close are one INFO line each, with the public id only."""
    connection = fake_connection()
    with caplog.at_level(logging.INFO, logger="signalr_django.connections"):
        lifecycle.connected(connection)
        lifecycle.closed(connection, "client_closed")
    assert [r.getMessage() for r in caplog.records] == [
        f"Connected abc123 hub={HUB} transport=WebSockets protocol=json user=alice",
        f"Closed abc123 hub={HUB} transport=WebSockets protocol=json user=alice "
        "reason=client_closed",
    ]
    assert all(r.name == "signalr_django.connections" for r in caplog.records)


def test_refusals_are_rate_limited_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    """A flood of refused attempts writes a bounded number of lines."""
    lifecycle.reset()
    scope = {
        "path": "/hubs/chat",
        "client": ("10.0.0.7", 5000),
        "headers": [(b"origin", b"http://evil.example"), (b"cookie", b"sessionid=secret")],
        "query_string": b"id=token&access_token=secret",
    }
    with caplog.at_level(logging.INFO, logger="signalr_django.connections"):
        for _ in range(50):
            lifecycle.refused(scope, ChatHub, "WebSockets", "origin", "not allowed")
        lifecycle.refused(scope, ChatHub, "WebSockets", "limit")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 11  # 10 origin lines, then the limit one
    assert messages[0] == (
        f"Refused WebSockets connection to hub={HUB} reason=origin (not allowed) "
        "client=10.0.0.7 origin=http://evil.example path=/hubs/chat"
    )
    assert "reason=limit" in messages[-1]
    assert not any("secret" in m for m in messages)
    lifecycle.reset()


def test_an_ending_connection_moves_its_traffic_to_the_totals() -> None:
    """Folded once: the live connection's slots are zeroed as the totals take them."""
    metrics = Metrics()
    connection = fake_connection()
    connection.messages_sent, connection.bytes_sent = 4, 400
    connection.messages_received, connection.bytes_received = 2, 50
    metrics.fold_traffic(connection)
    metrics.fold_traffic(connection)
    assert metrics.sent == {ChatHub: [4, 400]}
    assert metrics.received == {ChatHub: [2, 50]}
    assert (connection.messages_sent, connection.bytes_sent) == (0, 0)


def test_backplane_history_recoveries_and_gaps_are_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the backplane history could not keep is visible: gaps count catch-ups that
    found the history trimmed, recovered counts sends it saved."""
    from signalr_django.lifetime import history

    monkeypatch.setitem(history.counters, "recovered", 7)
    monkeypatch.setitem(history.counters, "gaps", 2)
    got = scrape(Metrics())
    assert got[key("signalr_backplane_recovered_total")] == 7
    assert got[key("signalr_backplane_gaps_total")] == 2
