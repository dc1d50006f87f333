"""What counting costs per echo, measured in-process (no server, no network, no noise).

An echo with metrics on adds, on the server's hot path: two slot increments for the
Invocation read, two `perf_counter` calls and one `MethodStats.record` (the method's
outcome and duration), and two slot increments for the Completion written. This times
exactly those updates, as the hot paths make them (a module-global `METRICS`, its `enabled`
flag checked first), and the same flag checks with metrics off, against the ~39 µs of
server CPU an echo costs; and what one recipient of a broadcast adds, against the ~6 µs a
delivery costs.

    python bench/metrics_cost.py            # prints one JSON object
"""

from __future__ import annotations

import json
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from time import perf_counter

if not __package__:  # run as a script: make ``signalr_django`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from signalr_django.metrics.counters import METRICS, MethodStats

ECHO_SERVER_US = 39.0  # README's Benchmarks: server CPU per echo on this machine type
DELIVERY_SERVER_US = 6.0  # and per broadcast delivery (pub/sub layer, N = 1,000)


class EchoHub:
    """Stands for a hub class (the counters key on the class object)."""


class Connection:
    """The four traffic slots of a `HubConnection`."""

    __slots__ = ("bytes_received", "bytes_sent", "hub_cls", "messages_received", "messages_sent")

    def __init__(self) -> None:
        self.hub_cls = EchoHub
        self.messages_received = self.bytes_received = 0
        self.messages_sent = self.bytes_sent = 0


connection = Connection()
method_stats: dict[str, MethodStats] = {}  # the dispatcher's, by method name
PAYLOAD = "x" * 64


def echo_counting() -> None:
    """The updates an echo makes, with their flag checks, as the hot paths make them."""
    if METRICS.enabled:  # HubSession.feed: the Invocation's frame
        connection.messages_received += 1
        connection.bytes_received += len(PAYLOAD)
    started = perf_counter() if METRICS.enabled else 0.0  # HubDispatcher._run
    if started:
        stats = method_stats.get("echo")
        if stats is None:
            stats = method_stats["echo"] = METRICS.method_stats(connection.hub_cls, "echo")
        stats.record("ok", perf_counter() - started)
    if METRICS.enabled:  # HubConnection.write: the Completion
        connection.messages_sent += 1
        connection.bytes_sent += len(PAYLOAD)


def fan_out_counting() -> None:
    """What one recipient of a broadcast adds (HubConnection.deliver)."""
    if METRICS.enabled:
        connection.messages_sent += 1
        connection.bytes_sent += len(PAYLOAD)


def per_call_ns(
    enabled: bool, call: Callable[[], None] = echo_counting, number: int = 20_000, repeat: int = 30
) -> float:
    """Best-of-`repeat` nanoseconds of CPU per `echo_counting` call.

    CPU time of this process, not wall time, in short batches: on a shared machine the
    wall clock counts other processes' turns, CPU time only ours.
    """
    METRICS.enabled = enabled
    try:
        best = min(timeit.repeat(call, number=number, repeat=repeat, timer=time.process_time))
    finally:
        METRICS.enabled = False
        METRICS.reset()
    return best / number * 1e9


def main() -> None:
    """Print the cost with metrics off and on, against an echo's and a delivery's CPU."""
    off, on = per_call_ns(False), per_call_ns(True)
    fan_off, fan_on = per_call_ns(False, fan_out_counting), per_call_ns(True, fan_out_counting)
    print(
        json.dumps(
            {
                "echo_ns_metrics_off": round(off, 1),
                "echo_ns_metrics_on": round(on, 1),
                "echo_added_share": round((on - off) / (ECHO_SERVER_US * 1000), 4),
                "delivery_ns_metrics_off": round(fan_off, 1),
                "delivery_ns_metrics_on": round(fan_on, 1),
                "delivery_added_share": round((fan_on - fan_off) / (DELIVERY_SERVER_US * 1000), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
