"""What counting costs on the two hot paths, measured in-process on the real code.

An end-to-end benchmark on a shared 2-core machine cannot resolve a 2 % difference: runs of
the same target differ by 10 % or more. This runs the package's own code without sockets,
metrics off and on alternately, and keeps the best of many repetitions of each, in CPU
time of this process:

- echo: Invocation frames fed to a `HubSession` of the bench's `EchoHub` (framing,
  dispatch, the method, the Completion written to an in-memory outbound);
- fan-out: `send_all` of the bench's `BroadcastHub` to 1,000 local connections.

The difference is what counting adds. Its share of the in-process cost is an upper bound
of its share on a server: on Daphne the same echo costs ~39 µs and a delivery ~6 µs on a
quiet machine (README's Benchmarks), most of it sockets and Twisted, which this leaves out.

    python bench/metrics_cost.py            # prints one JSON object
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` and ``signalr_django`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchproject.settings")

REPEATS = 40


async def echo_cost(enabled: bool, count: int = 2000) -> float:
    """Nanoseconds of CPU per echo through a HubSession, metrics on or off."""
    from bench.benchproject.hubs import EchoHub
    from signalr_django.dispatch.handler import get_handler
    from signalr_django.dispatch.session import HubSession
    from signalr_django.metrics.counters import METRICS
    from signalr_django.protocol import TransferFormat
    from signalr_django.server.outbound import ListOutbound

    METRICS.enabled = enabled
    outbound = ListOutbound()
    session = HubSession(
        get_handler(EchoHub, ""),
        connection_id=f"echo-{enabled}-{time.monotonic_ns()}",
        scope={"type": "websocket"},
        user=None,
        transport="WebSockets",
        formats=(TransferFormat.TEXT,),
        outbound=outbound,
    )
    await session.feed('{"protocol":"json","version":1}\x1e')
    frame = '{"type":1,"invocationId":"1","target":"Echo","arguments":["' + "x" * 64 + '"]}\x1e'
    started = time.process_time()
    for _ in range(count):
        await session.feed(frame)
        await asyncio.sleep(0)  # the invocation's task runs and writes its Completion
        await asyncio.sleep(0)
    elapsed = time.process_time() - started
    await session.finish(None, True)
    return elapsed / count * 1e9


async def fan_out_cost(enabled: bool, broadcasts: int = 20, receivers: int = 1000) -> float:
    """Nanoseconds of CPU per delivery of `send_all` to local connections."""
    from bench.benchproject.hubs import BroadcastHub
    from signalr_django.conf import hub_options
    from signalr_django.core.connection import HubConnection
    from signalr_django.lifetime.manager import HubLifetimeManager
    from signalr_django.metrics.counters import METRICS
    from signalr_django.protocol import get_protocol
    from signalr_django.server.outbound import ListOutbound

    manager = HubLifetimeManager("bench.BroadcastHub")
    await manager.start()
    options, protocol = hub_options(BroadcastHub), get_protocol("json")
    assert protocol is not None
    for i in range(receivers):
        connection = HubConnection(
            f"r{i}", BroadcastHub, options, protocol, {}, "WebSockets", ListOutbound()
        )
        manager.connections[connection.connection_id] = connection
    METRICS.enabled = enabled
    started = time.process_time()
    for _ in range(broadcasts):
        await manager.send_all("Receive", ["x" * 64])
    elapsed = time.process_time() - started
    return elapsed / (broadcasts * receivers) * 1e9


async def best(measure: Callable[[bool], Awaitable[float]]) -> tuple[float, float]:
    """Best-of-REPEATS (off, on), alternating which goes first."""
    off: list[float] = []
    on: list[float] = []
    for repeat in range(REPEATS):
        for enabled in (False, True) if repeat % 2 == 0 else (True, False):
            (on if enabled else off).append(await measure(enabled))
    return min(off), min(on)


async def main() -> None:
    """Print both paths' cost with metrics off and on, and what counting adds."""
    import django

    django.setup()
    from signalr_django.metrics.counters import METRICS

    echo_off, echo_on = await best(echo_cost)
    fan_off, fan_on = await best(fan_out_cost)
    METRICS.enabled = False
    print(
        json.dumps(
            {
                "echo_ns_metrics_off": round(echo_off),
                "echo_ns_metrics_on": round(echo_on),
                "echo_added_ns": round(echo_on - echo_off),
                "echo_added_share_of_in_process": round((echo_on - echo_off) / echo_off, 4),
                "delivery_ns_metrics_off": round(fan_off),
                "delivery_ns_metrics_on": round(fan_on),
                "delivery_added_ns": round(fan_on - fan_off),
                "delivery_added_share_of_in_process": round((fan_on - fan_off) / fan_off, 4),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
