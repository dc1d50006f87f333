"""Counters the hot paths update: ints in dicts and small bucket lists, no Prometheus.

Calling prometheus_client's `labels(...).inc()` per message costs about as much as a
quarter of an echo's server time (label lookup, a lock, a float box); an echo costs ~39 us
of CPU and the budget for metrics is 5 % of that. So the hot paths only add to plain ints
here, keyed by the hub class and a few bounded strings, and only when `METRICS.enabled`
(`SIGNALR["METRICS"]`): with metrics off, the whole cost is one attribute check. The
collector (`metrics.collector`) reads these at scrape time, when cost does not matter.

Every label value comes from a bounded set: hub classes, the methods a hub declares (never
the target a client sent), transport and protocol names, and the reasons and outcomes
listed below. This module runs on the event loop's thread only, so no lock is needed.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

# Invocation durations, in seconds: from a fast in-memory method (~50 us) to a slow
# database call. The same shape as ASP.NET Core's request-duration histogram, shifted down.
DURATION_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Backplane round trips (a request answered by another worker), in seconds.
ROUNDTRIP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# Why a connection ended (`signalr_disconnects_total{reason}`).
DISCONNECT_REASONS = (
    "client_closed",  # the client sent a Close message (connection.stop())
    "transport_closed",  # the socket or HTTP transport went away without a Close
    "server_aborted",  # the hub called `context.abort()`
    "timeout",  # no message from the client within CLIENT_TIMEOUT_INTERVAL
    "slow_client",  # over OUTBOUND_BUFFER_LIMIT
    "auth_expired",  # CLOSE_ON_AUTHENTICATION_EXPIRATION
    "shutdown",  # the worker is stopping
    "refused",  # `on_connected` (or a filter's) raised
    "protocol_error",  # the client broke the protocol
    "error",  # anything else
)

# Why a connection attempt was refused before it started (`signalr_connections_refused_total`).
REFUSAL_REASONS = ("origin", "auth", "limit", "draining", "transport")


class Histogram:
    """Cumulative-at-scrape histogram: one count per bucket, plus the sum and the total."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (`bisect` over ~16 bounds: a few hundred nanoseconds)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """How many observations were made."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it) pairs, as Prometheus exposes them."""
        out: list[tuple[str, int]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return out


class MethodStats:
    """Invocations of one declared method of one hub: counts by outcome, and durations.

    The dispatcher keeps one per method (by name) and records into it directly. Everything
    an invocation touches is in this one object (an int for the common outcome, the bucket
    list, the sum): on a busy machine each extra object is a likely cache miss, which
    costs more than the arithmetic.
    """

    __slots__ = ("counts", "ok", "other", "sum")

    def __init__(self) -> None:
        self.ok = 0
        self.other: dict[str, int] = {}  # outcomes other than "ok"
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)  # durations; the last is +Inf
        self.sum = 0.0

    def record(self, outcome: str, duration: float) -> None:
        """One invocation; a negative `duration` (not timed) is not observed."""
        if outcome == "ok":
            self.ok += 1
        else:
            self.other[outcome] = self.other.get(outcome, 0) + 1
        if duration >= 0.0:
            self.counts[bisect_left(DURATION_BUCKETS, duration)] += 1
            self.sum += duration

    def outcomes(self) -> dict[str, int]:
        """Invocations by outcome."""
        out = {"ok": self.ok} if self.ok else {}
        out.update(self.other)
        return out

    def durations(self) -> Histogram | None:
        """The durations as a Histogram (None before the first timed invocation)."""
        if not any(self.counts):
            return None
        histogram = Histogram(DURATION_BUCKETS)
        histogram.counts = list(self.counts)
        histogram.sum = self.sum
        return histogram

    def clear(self) -> None:
        """Zero everything (tests)."""
        self.ok = 0
        self.other.clear()
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.sum = 0.0


class Metrics:
    """The process's counters; the single instance is `METRICS`."""

    __slots__ = (
        "backplane_errors",
        "backplane_publishes",
        "backplane_receives",
        "connects",
        "disconnects",
        "enabled",
        "forwarded",
        "limits",
        "methods",
        "received",
        "refused",
        "roundtrip",
        "sent",
        "slow_clients",
    )

    def __init__(self) -> None:
        self.enabled = False
        self.methods: dict[tuple[type, str], MethodStats] = {}
        self.reset()

    def reset(self) -> None:
        """Zero every counter (tests); `enabled` is left as it is.

        Method statistics are zeroed in place: dispatchers hold on to them.
        """
        self.connects: dict[tuple[type, str, str], int] = {}
        self.disconnects: dict[tuple[type, str], int] = {}
        for stats in self.methods.values():
            stats.clear()
        # [messages, bytes] per hub class.
        self.received: dict[type, list[int]] = {}
        self.sent: dict[type, list[int]] = {}
        self.slow_clients: dict[type, int] = {}
        self.limits: dict[str, int] = {}
        self.refused: dict[tuple[str, str], int] = {}
        self.backplane_publishes = 0
        self.backplane_receives = 0
        self.backplane_errors = 0
        self.roundtrip = Histogram(ROUNDTRIP_BUCKETS)
        self.forwarded: dict[str, int] = {}

    # -- hot paths (callers check `enabled` first) ----------------------------------------
    #
    # Messages and bytes are counted on the connection itself (`HubConnection` slots, the
    # cheapest per-recipient update there is); an ended connection's counts move here.

    def count_received(self, hub: type, messages: int, size: int) -> None:
        """Messages (and their bytes) read from connections of `hub` that ended."""
        counts = self.received.get(hub)
        if counts is None:
            counts = self.received[hub] = [0, 0]
        counts[0] += messages
        counts[1] += size

    def count_sent(self, hub: type, messages: int, size: int) -> None:
        """Records (and their bytes) queued for connections of `hub` that ended."""
        counts = self.sent.get(hub)
        if counts is None:
            counts = self.sent[hub] = [0, 0]
        counts[0] += messages
        counts[1] += size

    def fold_traffic(self, connection: Any) -> None:
        """Move the traffic counts of a connection that is leaving its lifetime manager
        (where scrapes find the live ones) to the process totals."""
        if connection.messages_received or connection.bytes_received:
            self.count_received(
                connection.hub_cls, connection.messages_received, connection.bytes_received
            )
        if connection.messages_sent or connection.bytes_sent:
            self.count_sent(connection.hub_cls, connection.messages_sent, connection.bytes_sent)
        connection.messages_received = connection.bytes_received = 0
        connection.messages_sent = connection.bytes_sent = 0

    def method_stats(self, hub: type, method: str) -> MethodStats:
        """The statistics of `method` of `hub` (made on first use, then kept)."""
        stats = self.methods.get((hub, method))
        if stats is None:
            stats = self.methods[(hub, method)] = MethodStats()
        return stats

    def count_invocation(self, hub: type, method: str, outcome: str, duration: float) -> None:
        """One invocation of a declared method; a negative `duration` is not observed."""
        self.method_stats(hub, method).record(outcome, duration)

    # -- rare events (callers need not check `enabled`) -------------------------------------

    def count_connect(self, hub: type, transport: str, protocol: str) -> None:
        """A connection completed its handshake."""
        if self.enabled:
            key = (hub, transport, protocol)
            self.connects[key] = self.connects.get(key, 0) + 1

    def count_disconnect(self, hub: type, reason: str) -> None:
        """A connection ended, for `reason` (one of DISCONNECT_REASONS)."""
        if self.enabled:
            key = (hub, reason)
            self.disconnects[key] = self.disconnects.get(key, 0) + 1

    def count_refused(self, hub: str, reason: str) -> None:
        """A connection attempt refused before it started (one of REFUSAL_REASONS)."""
        if self.enabled:
            key = (hub, reason)
            self.refused[key] = self.refused.get(key, 0) + 1

    def count_slow_client(self, hub: type) -> None:
        """A connection closed because its client did not keep up."""
        if self.enabled:
            self.slow_clients[hub] = self.slow_clients.get(hub, 0) + 1

    def count_limit(self, setting: str) -> None:
        """A per-connection or per-worker cap reached, named by its setting."""
        if self.enabled:
            self.limits[setting] = self.limits.get(setting, 0) + 1

    def count_publish(self) -> None:
        """One message published on the backplane."""
        if self.enabled:
            self.backplane_publishes += 1

    def count_receive(self) -> None:
        """One message received from the backplane."""
        if self.enabled:
            self.backplane_receives += 1

    def count_backplane_error(self) -> None:
        """A channel-layer operation failed or timed out."""
        if self.enabled:
            self.backplane_errors += 1

    def observe_roundtrip(self, seconds: float) -> None:
        """A request answered by another worker took `seconds`."""
        if self.enabled:
            self.roundtrip.observe(seconds)

    def count_forwarded(self, transport: str) -> None:
        """An HTTP-transport request relayed to the worker that owns its connection."""
        if self.enabled:
            self.forwarded[transport] = self.forwarded.get(transport, 0) + 1


METRICS = Metrics()


def configure() -> None:
    """Turn counting on or off from `SIGNALR["METRICS"]` (read when an endpoint is set up)."""
    from ..conf import global_options

    METRICS.enabled = bool(global_options().METRICS)


def hub_label(hub: Any) -> str:
    """The `hub` label of a hub class: its dotted path, as the lifetime manager names it."""
    if isinstance(hub, str):
        return hub
    return f"{hub.__module__}.{hub.__qualname__}"
