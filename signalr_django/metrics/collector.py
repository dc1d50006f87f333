"""Turns the counters and the live connections into Prometheus metric families at scrape time.

A custom `prometheus_client` Collector: nothing is updated through prometheus_client on
the hot paths (see `counters`); every scrape reads the plain counters, and computes the
gauges (connections, bytes queued for clients) from the lifetime managers, which already
know every connection. Names follow Prometheus conventions: a `signalr_` prefix, base
units (seconds, bytes), `_total` on counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from .counters import METRICS, Histogram, Metrics, hub_label


def _histogram(family: HistogramMetricFamily, labels: list[str], histogram: Histogram) -> None:
    family.add_metric(labels, histogram.cumulative(), histogram.sum)


def live_connections() -> list[Any]:
    """Every hub connection of this process (a copy: safe to iterate while others change)."""
    from ..lifetime.manager import _managers

    return [c for manager in list(_managers.values()) for c in list(manager.connections.values())]


def _traffic(metrics: Metrics) -> tuple[dict[type, list[int]], dict[type, list[int]]]:
    """Messages and bytes both ways, per hub: ended connections' totals plus live ones'."""
    received = {hub: list(counts) for hub, counts in list(metrics.received.items())}
    sent = {hub: list(counts) for hub, counts in list(metrics.sent.items())}
    for connection in live_connections():
        hub = connection.hub_cls
        if connection.messages_received or connection.bytes_received:
            counts = received.setdefault(hub, [0, 0])
            counts[0] += connection.messages_received
            counts[1] += connection.bytes_received
        if connection.messages_sent or connection.bytes_sent:
            counts = sent.setdefault(hub, [0, 0])
            counts[0] += connection.messages_sent
            counts[1] += connection.bytes_sent
    return received, sent


class SignalRCollector(Collector):
    """The metrics of this worker process (`signalr_*`)."""

    def __init__(self, metrics: Metrics = METRICS) -> None:
        self.metrics = metrics

    def describe(self) -> list[Any]:
        """Nothing up front: families are computed at each scrape."""
        return []

    def collect(self) -> Iterator[Any]:
        """Every `signalr_*` family, read now."""
        m = self.metrics
        yield from self._gauges()

        connects = CounterMetricFamily(
            "signalr_connects",
            "Hub connections that completed their handshake.",
            labels=["hub", "transport", "protocol"],
        )
        for (hub, transport, protocol), value in list(m.connects.items()):
            connects.add_metric([hub_label(hub), transport, protocol], value)
        yield connects

        disconnects = CounterMetricFamily(
            "signalr_disconnects",
            "Hub connections that ended, by reason.",
            labels=["hub", "reason"],
        )
        for (hub, reason), value in list(m.disconnects.items()):
            disconnects.add_metric([hub_label(hub), reason], value)
        yield disconnects

        refused = CounterMetricFamily(
            "signalr_connections_refused",
            "Connection attempts refused before they started (origin, auth, limit, draining).",
            labels=["hub", "reason"],
        )
        for (name, reason), value in list(m.refused.items()):
            refused.add_metric([name, reason], value)
        yield refused

        invocations = CounterMetricFamily(
            "signalr_invocations",
            "Hub method invocations, by outcome.",
            labels=["hub", "method", "outcome"],
        )
        methods = list(m.methods.items())
        for (hub, method), stats in methods:
            for outcome, value in stats.outcomes().items():
                invocations.add_metric([hub_label(hub), method, outcome], value)
        yield invocations

        durations = HistogramMetricFamily(
            "signalr_invocation_duration_seconds",
            "Time from the start of a hub method to its Completion being queued.",
            labels=["hub", "method"],
        )
        for (hub, method), stats in methods:
            histogram = stats.durations()
            if histogram is not None:
                _histogram(durations, [hub_label(hub), method], histogram)
        yield durations

        received, sent = _traffic(m)
        for direction, table in (("received", received), ("sent", sent)):
            messages = CounterMetricFamily(
                f"signalr_messages_{direction}",
                f"Hub protocol messages {direction} (pings included).",
                labels=["hub"],
            )
            size = CounterMetricFamily(
                f"signalr_bytes_{direction}",
                f"Bytes of hub protocol messages {direction} (characters for text frames).",
                labels=["hub"],
            )
            for hub, (count, total) in list(table.items()):
                messages.add_metric([hub_label(hub)], count)
                size.add_metric([hub_label(hub)], total)
            yield messages
            yield size

        slow = CounterMetricFamily(
            "signalr_slow_clients_closed",
            "Connections closed because their client did not keep up (OUTBOUND_BUFFER_LIMIT).",
            labels=["hub"],
        )
        for hub, value in list(m.slow_clients.items()):
            slow.add_metric([hub_label(hub)], value)
        yield slow

        limits = CounterMetricFamily(
            "signalr_limits_hit",
            "Caps reached, by the setting that sets them.",
            labels=["limit"],
        )
        for setting, value in list(m.limits.items()):
            limits.add_metric([setting], value)
        yield limits

        yield CounterMetricFamily(
            "signalr_backplane_publishes",
            "Messages published to other workers on the channel layer.",
            value=m.backplane_publishes,
        )
        yield CounterMetricFamily(
            "signalr_backplane_receives",
            "Messages received from the channel layer.",
            value=m.backplane_receives,
        )
        yield CounterMetricFamily(
            "signalr_backplane_errors",
            "Channel-layer operations that failed or timed out.",
            value=m.backplane_errors,
        )
        # The backplane history (pub/sub layer on Redis): sends a resubscribing worker
        # caught up on, and catch-ups that found the history trimmed (sends to this
        # worker's clients may have been dropped: docs/delivery.md).
        from ..lifetime.history import counters as history

        yield CounterMetricFamily(
            "signalr_backplane_recovered",
            "Sends delivered from the backplane history after this worker resubscribed.",
            value=history.get("recovered", 0),
        )
        yield CounterMetricFamily(
            "signalr_backplane_gaps",
            "Catch-ups that found the backplane history trimmed past what this worker read.",
            value=history.get("gaps", 0),
        )
        roundtrip = HistogramMetricFamily(
            "signalr_backplane_roundtrip_seconds",
            "Requests answered by another worker (group changes, client results): round trip.",
        )
        _histogram(roundtrip, [], m.roundtrip)
        yield roundtrip

        forwarded = CounterMetricFamily(
            "signalr_forwarded_requests",
            "HTTP-transport requests relayed to the worker that owns their connection.",
            labels=["request"],
        )
        for kind, value in list(m.forwarded.items()):
            forwarded.add_metric([kind], value)
        yield forwarded

    @staticmethod
    def _gauges() -> Iterator[Any]:
        """Connections and queued bytes, read from the live connections."""
        from ..core.shutdown import is_draining

        counts: dict[tuple[str, str, str], int] = {}
        queued: dict[str, int] = {}
        for connection in live_connections():
            hub = hub_label(connection.hub_cls)
            key = (hub, connection.transport, connection.protocol.name)
            counts[key] = counts.get(key, 0) + 1
            try:
                pending = connection.outbound.pending()
            except Exception:  # a transport being torn down
                pending = 0
            queued[hub] = queued.get(hub, 0) + pending
        connections = GaugeMetricFamily(
            "signalr_connections",
            "Hub connections open on this worker.",
            labels=["hub", "transport", "protocol"],
        )
        for (hub, transport, protocol), value in counts.items():
            connections.add_metric([hub, transport, protocol], value)
        yield connections
        outbound = GaugeMetricFamily(
            "signalr_outbound_queue_bytes",
            "Bytes written for clients that they have not taken yet.",
            labels=["hub"],
        )
        for hub, value in queued.items():
            outbound.add_metric([hub], value)
        yield outbound
        yield GaugeMetricFamily(
            "signalr_draining",
            "1 while this worker is shutting down and refuses new connections.",
            value=1 if is_draining() else 0,
        )
