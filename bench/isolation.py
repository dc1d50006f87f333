"""Broadcast with 1 % of the receivers not reading: the others' delivery rate against plain.

    python bench/isolation.py                 # N=1,000, 3 interleaved runs: ~4-5 minutes
    python bench/isolation.py --quick         # 1 run, 10 s windows: ~1 minute
    python bench/isolation.py --quick -n 200  # a small check

One Daphne serving the bench project's ``BroadcastHub`` (``/hubs/broadcast``, the bench
settings, in-memory channel layer), N receivers joined to one group and one sender keeping K
broadcasts in flight, as in ``broadcast.py`` but on one process. Two measurements per run,
each on a freshly started server, in an order that alternates between runs:

* ``plain``: all N receivers read;
* ``stalled``: 1 % of them (``--stalled``, at least one) complete the handshake and ``Join``,
  then never read again (their socket's receive buffer is 4 KiB, so the server's kernel
  buffer fills, then whatever the server queues for them). The other 99 % read as before.

A broadcast frees its slot once every *reading* receiver has it, so the rate is the rate at
which the well-behaved receivers are reached; the window starts before the stalled receivers
fall behind (the kernel takes ~3 MB for each first) and is long enough to cover it, so a
server that lets the stalled ones hold up a broadcast shows it. The figure is the readers'
deliveries per second in the stalled run divided by the plain run's (goal: >= 0.9). Also
reported: broadcasts that never reached every reader within ``--stall-timeout``, how many
stalled receivers the server closed, and the server's RSS growth.

The payload (16 KiB by default) is larger than ``broadcast.py``'s 64 B so that the stalled
receivers fall behind within the window rather than minutes later. Prints a Markdown table
and writes ``bench/results/isolation.json``; each server's log goes to
``bench/results/logs/isolation-<kind>-run<R>.log``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import math
import os
import socket
import statistics
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import LOG_DIR, RESULTS_DIR, fmt, md_head, md_row
from bench.loadgen import (
    BroadcastConfig,
    BroadcastTally,
    ClientConfig,
    Endpoint,
    _send_broadcasts,
    _watch_stalls,
    close_all,
    default_client,
    open_connection,
    open_many,
    read_cpu_seconds,
    read_rss_kib,
)

HUB = "/hubs/broadcast"
KINDS = ("plain", "stalled")
RS = b"\x1e"


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a run, recorded in the JSON so results can be compared."""

    runs: int = 3
    receivers: int = 1000
    stalled: float = 0.01
    in_flight: int = 4
    duration: float = 20.0
    warmup: float = 1.0
    payload_size: int = 16 * 1024
    stall_timeout: float = 5.0
    concurrency: int = 50
    client: str = dataclasses.field(default_factory=default_client)

    @property
    def stalled_count(self) -> int:
        """Receivers that stop reading in the ``stalled`` measurement (at least one)."""
        return max(1, math.ceil(self.receivers * self.stalled))


QUICK = {"runs": 1, "duration": 10.0}


# --------------------------------------------------------------------------- stalled clients


def _frame(text: bytes) -> bytes:
    """One masked WebSocket text frame."""
    mask = os.urandom(4)
    length = len(text)
    if length < 126:
        head = bytes([0x81, 0x80 | length])
    elif length < 65536:
        head = bytes([0x81, 0x80 | 126]) + struct.pack("!H", length)
    else:
        head = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", length)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text))


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    return head[0] & 0x0F, await reader.readexactly(length)


class StalledReceiver:
    """A receiver that joins the group, then stops reading its socket for good."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, endpoint: Endpoint, group: str, timeout: float) -> StalledReceiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: window
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (endpoint.host, endpoint.port)), timeout)
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {endpoint.path} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"upgrade refused: {head.splitlines()[0]!r}")
        writer.write(_frame(b'{"protocol":"json","version":1}' + RS))
        writer.write(
            _frame(
                b'{"type":1,"invocationId":"j","target":"Join","arguments":["'
                + group.encode()
                + b'"]}'
                + RS
            )
        )
        joined = False
        while not joined:
            _, payload = await asyncio.wait_for(_read_frame(reader), timeout)
            joined = b'"type":3' in payload and b'"invocationId":"j"' in payload
        transport = cast(Any, writer.transport)  # asyncio's or uvloop's (not a subclass)
        transport.pause_reading()  # from here on the kernel buffers fill, then the server's
        return cls(reader, writer)

    async def closed_by_server(self, timeout: float) -> bool:
        """Read what is left; True when the server ended the connection within ``timeout``."""
        transport = cast(Any, self.writer.transport)
        transport.resume_reading()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                data = await asyncio.wait_for(
                    self.reader.read(1 << 20), deadline - time.monotonic()
                )
                if not data:
                    return True
        except ConnectionError:
            return True  # reset: the server dropped the socket after its close timed out
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.writer.close()


# --------------------------------------------------------------------------- one measurement


async def _measure(url: str, pid: int, kind: str, s: Settings, group: str) -> dict[str, Any]:
    """Connect, broadcast for the window, count the reading receivers' deliveries."""
    endpoint = Endpoint.parse(url)
    cfg = ClientConfig(endpoint=endpoint, client=s.client)
    stalled_n = s.stalled_count if kind == "stalled" else 0
    readers_n = s.receivers - stalled_n
    bc = BroadcastConfig(
        receivers=readers_n,
        in_flight=s.in_flight,
        duration=s.duration,
        warmup=s.warmup,
        payload_size=s.payload_size,
        group=group,
        stall_timeout=s.stall_timeout,
    )
    tally = BroadcastTally(s.in_flight)

    async def join(conn: Any) -> None:
        conn.on_invocation = tally.receiver(remote=False)
        await conn.invoke("Join", group)

    sender = await open_connection(cfg)
    opened = await open_many(cfg, readers_n, s.concurrency, 120.0, join)
    stalled: list[StalledReceiver] = []
    stalled_errors = 0
    for _ in range(stalled_n):
        try:
            stalled.append(await StalledReceiver.open(endpoint, group, 20.0))
        except Exception as exc:
            stalled_errors += 1
            print(f"stalled receiver failed: {exc!r}", file=sys.stderr)
    readers = opened.conns
    tally.expected = len(readers)
    rss_before = read_rss_kib(pid)
    rss_peak = rss_before or 0

    sending = asyncio.create_task(_send_broadcasts(sender, tally, bc))
    watchdog = asyncio.create_task(_watch_stalls(tally, bc.stall_timeout))
    await asyncio.sleep(bc.warmup)
    cpu_before = read_cpu_seconds(pid)
    begun = time.monotonic()
    tally.recording = True
    while time.monotonic() - begun < bc.duration:
        await asyncio.sleep(0.25)
        rss_peak = max(rss_peak, read_rss_kib(pid) or 0)
    tally.recording = False
    wall = time.monotonic() - begun
    cpu_after = read_cpu_seconds(pid)
    stalled_at_end = tally.stalled
    sending.cancel()
    watchdog.cancel()
    closed = sum(await asyncio.gather(*(r.closed_by_server(10.0) for r in stalled)))
    for r in stalled:
        r.close()
    alive = sum(not c.closed for c in readers)
    await asyncio.wait_for(close_all([sender, *readers]), 30)
    deliveries = tally.window_deliveries
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "kind": kind,
        "readers": len(readers),
        "reader_connect_errors": dict(opened.errors),
        "stalled_receivers": len(stalled),
        "stalled_connect_errors": stalled_errors,
        "stalled_closed_by_server": closed,
        "duration_s": round(wall, 3),
        "deliveries": deliveries,
        "deliveries_per_s": round(deliveries / wall, 1),
        "broadcasts_per_s": round(tally.window_broadcasts / wall, 2),
        "stalled_broadcasts": stalled_at_end,
        "readers_alive_at_end": alive,
        "server_us_per_delivery": round(cpu / deliveries * 1e6, 1) if cpu and deliveries else None,
        "rss_growth_kib": (rss_peak - rss_before) if rss_before is not None else None,
        "errors": dict(tally.errors),
    }


def measure(kind: str, s: Settings, run: int) -> dict[str, Any]:
    """One measurement on a fresh Daphne."""
    log = LOG_DIR / f"isolation-{kind}-run{run}.log"
    with common.servers(common.daphne_command, [log], common.django_env()) as [(port, pid)]:
        url = f"ws://127.0.0.1:{port}{HUB}"
        result: dict[str, Any] = common.run_async(
            _measure(url, pid, kind, s, f"isolation-{kind}-{run}")
        )
    errors, _, _ = common.log_errors(common.read_log(log))
    result["server_log_errors"] = errors
    return result


# --------------------------------------------------------------------------- report


def report(s: Settings, results: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The Markdown table and the summary (medians and the ratio)."""
    by_kind = {k: [r for r in results if r["kind"] == k] for k in KINDS}
    medians = {
        k: statistics.median(r["deliveries_per_s"] for r in rs) if rs else None
        for k, rs in by_kind.items()
    }
    ratio = common.ratio(medians["stalled"], medians["plain"])
    per_run = [
        common.ratio(st["deliveries_per_s"], pl["deliveries_per_s"])
        for pl, st in zip(by_kind["plain"], by_kind["stalled"], strict=False)
    ]
    lines = [
        f"Broadcast to N={s.receivers:,} ({s.stalled_count} not reading in `stalled`), "
        f"{s.payload_size:,} B payload, K={s.in_flight}, {s.duration:g} s windows, "
        f"{s.runs} run(s)",
        "",
        *md_head(
            "run",
            "kind",
            "readers",
            "deliveries/s",
            "broadcasts/s",
            "stalled broadcasts",
            "non-readers closed",
            "server µs/delivery",
            "RSS growth KiB",
        ),
    ]
    for r in results:
        lines.append(
            md_row(
                r["run"],
                r["kind"],
                r["readers"],
                fmt(r["deliveries_per_s"]),
                fmt(r["broadcasts_per_s"], 1),
                r["stalled_broadcasts"],
                f"{r['stalled_closed_by_server']}/{r['stalled_receivers']}",
                fmt(r["server_us_per_delivery"], 1),
                fmt(r["rss_growth_kib"]),
            )
        )
    lines += [
        "",
        f"readers' deliveries/s, stalled / plain (median): **{fmt(ratio, 3)}** "
        f"(per run: {', '.join(fmt(x, 3) for x in per_run)}) — goal >= 0.9: "
        f"{common.verdict(ratio, '>=', 0.9)}",
    ]
    summary = {"medians_deliveries_per_s": medians, "ratio": ratio, "ratio_per_run": per_run}
    return "\n".join(lines), summary


def main(argv: Sequence[str] | None = None) -> int:
    p = common.argument_parser(__doc__, "1 run, 10 s windows", "kinds to run: plain,stalled")
    p.add_argument("-n", "--receivers", type=int, help="N (default 1000)")
    p.add_argument("--stalled", type=float, help="share of N that never reads (default 0.01)")
    p.add_argument("-k", "--in-flight", type=int, help="broadcasts in flight (default 4)")
    p.add_argument("-d", "--duration", type=float, help="measured window, s (default 20)")
    p.add_argument("--warmup", type=float, help="before the window, s (default 1)")
    p.add_argument("--payload-size", type=int, help="bytes per broadcast (default 16384)")
    p.add_argument("--stall-timeout", type=float, help="give up on a broadcast, s (default 5)")
    p.add_argument("--concurrency", type=int, help="handshakes in flight (default 50)")
    common.add_client(p)
    args = common.parse(p, argv, RESULTS_DIR / "isolation.json")
    keys = [f.name for f in Settings.__dataclass_fields__.values()]
    s = Settings(**common.given(args, QUICK, keys))
    kinds = common.choices(args.only, KINDS, "--only") if args.only else KINDS
    common.prepare()
    env = common.environment()
    env["source"] = common.source_state()
    results: list[dict[str, Any]] = []
    for run, order in common.rotations(kinds, s.runs):
        for kind in order:
            result = {"run": run, **measure(kind, s, run)}
            results.append(result)
            common.print_progress(
                f"run {run} {kind}: {fmt(result['deliveries_per_s'])} deliveries/s to "
                f"{result['readers']} readers, {result['stalled_broadcasts']} stalled broadcasts, "
                f"{result['stalled_closed_by_server']}/{result['stalled_receivers']} "
                "non-readers closed"
            )
    results.sort(key=lambda r: (r["run"], KINDS.index(r["kind"])))
    table, summary = report(s, results)
    print(table)
    env["source_end"] = common.source_state()
    common.write_results(args.out, env, settings=asdict(s), summary=summary, measurements=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
