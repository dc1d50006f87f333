"""Where the memory of an idle connection goes: a tracemalloc diff per connection, by file.

Starts the bench project's hub on Daphne in a child process with `tracemalloc` on, opens
`-k` idle connections (as `bench/run.py`'s idle scenario does, after a warm-up), and asks the
server for a snapshot before and after (SIGUSR1). Prints the growth per connection by file
(Daphne, Twisted, autobahn, asyncio, Channels, this package) and the top lines; the total is
the Python heap only (sockets' kernel buffers are not in it), so it is a little below the
RSS growth `bench/capacity.py` reports.

    python bench/memory.py              # 1,000 connections
    python bench/memory.py -k 2000 --lines 40

It is a diagnostic, not a benchmark: tracemalloc slows the server several times over.
"""

from __future__ import annotations

import argparse
import asyncio
import linecache
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.loadgen import ClientConfig, Endpoint, open_many

SERVER = r"""
import gc, os, signal, sys, tracemalloc
tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "1")))
import django
django.setup()
from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server
from twisted.internet import reactor
from bench.benchproject.asgi import application

taken = [0]

def snapshot():
    gc.collect()
    path = os.path.join(os.environ["BENCH_SNAPSHOTS"], f"snap-{taken[0]}")
    tracemalloc.take_snapshot().dump(path + ".pickle")
    open(path + ".done", "w").close()
    taken[0] += 1

reactor.callWhenRunning(
    lambda: signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(snapshot))
)
endpoints = build_endpoint_description_strings(host="127.0.0.1", port=int(sys.argv[1]))
Server(application=application, endpoints=endpoints, signal_handlers=True).run()
"""


def _snapshot(proc: subprocess.Popen[bytes], folder: str, index: int) -> tracemalloc.Snapshot:
    proc.send_signal(signal.SIGUSR1)
    done = os.path.join(folder, f"snap-{index}.done")
    deadline = time.monotonic() + 300
    while not os.path.exists(done):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the server did not write its snapshot")
        time.sleep(0.1)
    snapshot = tracemalloc.Snapshot.load(os.path.join(folder, f"snap-{index}.pickle"))
    return snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])


def _short(filename: str) -> str:
    for marker in ("site-packages/", "signalr_django/", "python3.11/", "python3.12/"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return ("signalr_django/" + tail) if marker == "signalr_django/" else tail
    return filename


async def _open(port: int, count: int) -> int:
    cfg = ClientConfig(Endpoint("127.0.0.1", port, "/hubs/echo"), negotiate=True, timeout=120)
    opened = await open_many(cfg, count, 20, cap=1200.0)
    return len(opened.conns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("-k", "--connections", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=25, help="top lines to print")
    parser.add_argument(
        "--frames",
        type=int,
        default=0,
        help="also print the top call stacks, this many frames deep (slower server)",
    )
    args = parser.parse_args(argv)
    common.prepare()
    port = common.free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = {**common.django_env(), "BENCH_SNAPSHOTS": folder}
        if args.frames:
            env["BENCH_TRACE_FRAMES"] = str(args.frames)
        log = (common.LOG_DIR / "memory-server.log").open("wb")
        proc = subprocess.Popen(
            [common.PYTHON, "-c", SERVER, str(port)],
            cwd=common.ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            common.wait_accepting(port, proc, timeout=300)
            loop = asyncio.new_event_loop()
            loop.run_until_complete(_open(port, 50))  # warm-up: imports, first negotiate
            time.sleep(1.0)
            before = _snapshot(proc, folder, 0)
            count = loop.run_until_complete(_open(port, args.connections))
            time.sleep(2.0)
            after = _snapshot(proc, folder, 1)
            loop.close()
        finally:
            common.stop([proc])
            log.close()
    by_file = after.compare_to(before, "filename")
    total = sum(stat.size_diff for stat in by_file)
    ours = sum(stat.size_diff for stat in by_file if "signalr_django" in stat.traceback[0].filename)
    print(
        f"{count:,} connections: {total / count:,.0f} B per connection traced, "
        f"{ours / count:,.0f} B of it allocated in signalr_django"
    )
    print("\n| B per connection | blocks | file |\n|---|---|---|")
    for stat in by_file[:20]:
        print(
            f"| {stat.size_diff / count:,.0f} | {stat.count_diff / count:.1f} | "
            f"{_short(stat.traceback[0].filename)} |"
        )
    print("\n| B per connection | line |\n|---|---|")
    for stat in after.compare_to(before, "lineno")[: args.lines]:
        frame = stat.traceback[0]
        code = linecache.getline(frame.filename, frame.lineno).strip()[:70]
        print(
            f"| {stat.size_diff / count:,.0f} | {_short(frame.filename)}:{frame.lineno} `{code}` |"
        )
    if args.frames:
        print("\n| B per connection | call stack (innermost last) |\n|---|---|")
        for stat in after.compare_to(before, "traceback")[: args.lines]:
            stack = " ← ".join(
                f"{_short(frame.filename)}:{frame.lineno}" for frame in reversed(stat.traceback)
            )
            print(f"| {stat.size_diff / count:,.0f} | {stack} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
