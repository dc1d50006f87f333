"""How many connections one worker holds: 10,000 to 50,000 idle connections, side by side.

For each level (``--levels``, default 10000,25000,50000) and each target (``hub``: the
``EchoHub`` on Daphne; ``bare``: the bare ``websockets`` server, the Python ceiling; ``hub-base``
with ``BENCH_BASELINE``), a fresh server is started and measured in five steps:

1. **connect**: K connections opened with ``--concurrency`` handshakes in flight by ``--procs``
   generator processes; the hub's clients ``POST /negotiate`` first, as the official clients do.
   ``connect/s`` and the server's CPU per connection.
2. **memory**: growth of the server's RSS from before the first connection to 2 s after the last
   one opened, divided by K.
3. **idle**: ``--idle`` seconds (default 30: two keep-alive intervals) with every connection
   sending a SignalR Ping every 15 s, spread evenly as real clients' are; the hub sends its own
   Pings and checks client timeouts. The server's CPU over the window, as % of one core.
4. **echo**: one more connection invokes ``Echo`` back to back for ``--echo`` seconds among the
   idle ones: round-trip p50 / p99.
5. **recovery**: every generator process exits at once (the kernel closes all K sockets), and a
   new client connects (negotiate, upgrade, handshake) and completes one ``Echo``, retrying until
   it does: the time from the mass close to that first success.

Loopback has ~28,000 ephemeral ports per destination address, so connections are spread over
127.0.0.2, 127.0.0.3, ... (servers listen on 0.0.0.0). The runner lifts its open-files limit
(the servers and generators inherit it); it must be allowed to (root, or a hard limit above
2 K): see the sizing guide in README.md for the kernel settings a big worker needs.

    python bench/capacity.py --quick                 # 2,000 and 5,000, short windows: ~2 min
    python bench/capacity.py                         # 10k, 25k, 50k, 1 run: ~15 min
    python bench/capacity.py --levels 50000 --only hub

Results: a Markdown table on stdout, everything in ``bench/results/capacity.json``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.loadgen import (
    ClientConfig,
    Endpoint,
    HubConnection,
    make_payload,
    open_connection,
    open_many,
    percentile,
    read_cpu_seconds,
    read_rss_kib,
)

PER_ADDRESS = 12_000  # connections per destination address (and TIME_WAIT for negotiates)
PING_INTERVAL = 15.0


def _targets() -> dict[str, tuple[list[str], Path | None, bool]]:
    """name -> (server command without port, working directory, negotiates)."""
    bare = [common.PYTHON, str(common.BENCH_DIR / "servers" / "bare_websockets.py")]
    targets: dict[str, tuple[list[str], Path | None, bool]] = {
        "hub": ([common.PYTHON, "-m", "daphne", "-b", "0.0.0.0"], None, True),
        "bare": ([*bare, "--host", "0.0.0.0"], None, False),
    }
    # The generic ASGI path on uvicorn (uvloop, httptools, websockets-sansio); --only.
    uvicorn = common.uvicorn_command(0)
    uvicorn[uvicorn.index("--host") + 1] = "0.0.0.0"
    targets["hub-uvicorn"] = (
        uvicorn[: uvicorn.index("--port")] + uvicorn[uvicorn.index("--port") + 2 : -1],
        None,
        True,
    )
    if common.baseline_root() is not None:
        targets["hub-base"] = (
            [common.PYTHON, "-m", "daphne", "-b", "0.0.0.0"],
            common.baseline_root(),
            True,
        )
    return targets


def _command(target: list[str], port: int) -> list[str]:
    if "daphne" in target:
        return [*target, "-p", str(port), common.ASGI_APP]
    if "uvicorn" in target:
        return [*target, "--port", str(port), common.ASGI_APP]
    return [*target, "--port", str(port)]


def lift_file_limit(need: int) -> int:
    """Raise this process's open-files limit (soft and, when allowed, hard) to ``need``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(need, hard)))
    except (ValueError, OSError):
        common.raise_nofile_limit()
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------- generator side


def _shares(total: int, procs: int, first_address: int) -> list[list[tuple[str, int]]]:
    """Per generator process: ``[(host, count), ...]`` with at most PER_ADDRESS per host."""
    plan: list[list[tuple[str, int]]] = [[] for _ in range(procs)]
    address = first_address
    left = total
    proc = 0
    while left > 0:
        chunk = min(PER_ADDRESS, left)
        plan[proc % procs].append((f"127.0.0.{address}", chunk))
        address += 1
        proc += 1
        left -= chunk
    return plan


async def _spread_pings(conns: list[HubConnection]) -> None:
    """Each connection Pings every PING_INTERVAL, at its own offset (real clients are spread)."""
    if not conns:
        return
    gap = PING_INTERVAL / len(conns)
    while True:
        begun = time.monotonic()
        for index, conn in enumerate(conns):
            if not conn.closed:
                try:
                    await conn.ping()
                except Exception:
                    pass
            ahead = begun + (index + 1) * gap - time.monotonic()
            if ahead > 0.005:
                await asyncio.sleep(ahead)
        rest = begun + PING_INTERVAL - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)


async def _hold(
    port: int,
    path: str,
    negotiate: bool,
    share: list[tuple[str, int]],
    concurrency: int,
    queue: Any,
) -> None:
    conns: list[HubConnection] = []
    errors: dict[str, int] = {}
    seconds: list[float] = []
    started = time.monotonic()
    for host, count in share:
        cfg = ClientConfig(Endpoint(host, port, path), negotiate=negotiate, timeout=60.0)
        opened = await open_many(cfg, count, concurrency, cap=900.0)
        conns += opened.conns
        seconds += opened.connect_seconds
        for key, value in opened.errors.items():
            errors[key] = errors.get(key, 0) + value
    queue.put(("opened", len(conns), started, time.monotonic(), errors))
    await _spread_pings(conns)  # until the parent kills this process: all sockets close at once


def _child(*args: Any) -> None:
    common.run_async(_hold(*args))


# --------------------------------------------------------------------------- measurement


async def _echo_probe(port: int, path: str, negotiate: bool, seconds: float) -> dict[str, Any]:
    cfg = ClientConfig(Endpoint("127.0.0.1", port, path), negotiate=negotiate, timeout=60.0)
    conn = await open_connection(cfg)
    payload = make_payload(64)
    times: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        begun = time.perf_counter()
        result = await asyncio.wait_for(conn.invoke("Echo", payload), 60)
        times.append(time.perf_counter() - begun)
        if result != payload:
            raise RuntimeError("echo returned another payload")
    await conn.close()
    times.sort()
    return {
        "echo_count": len(times),
        "echo_p50_ms": round((percentile(times, 50) or 0) * 1000, 3),
        "echo_p99_ms": round((percentile(times, 99) or 0) * 1000, 3),
    }


async def _first_success(port: int, path: str, negotiate: bool, since: float) -> float:
    cfg = ClientConfig(Endpoint("127.0.0.1", port, path), negotiate=negotiate, timeout=5.0)
    while True:
        try:
            conn = await open_connection(cfg)
            await asyncio.wait_for(conn.invoke("Echo", "x"), 30)
            await conn.close()
            return time.monotonic() - since
        except Exception:
            await asyncio.sleep(0.01)


def measure(name: str, level: int, args: Any) -> dict[str, Any]:
    command, cwd, negotiate = _targets()[name]
    port = common.free_port()
    log_path = common.LOG_DIR / f"capacity-{name}-{level}.log"
    path = "/hubs/echo"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            _command(command, port),
            cwd=cwd or common.ROOT,
            env=common.django_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        children: list[Any] = []
        try:
            common.wait_accepting(port, server, timeout=120)
            # Warm the server (imports, first negotiate) before the RSS baseline.
            common.run_async(_echo_probe(port, path, negotiate, 0.5))
            time.sleep(1.0)
            pid = server.pid
            rss0, cpu0 = read_rss_kib(pid), read_cpu_seconds(pid)
            ctx = multiprocessing.get_context("fork")
            queue = ctx.Queue()
            plan = _shares(level, args.procs, first_address=2)
            per_proc = max(1, args.concurrency // args.procs)
            for share in plan:
                child = ctx.Process(
                    target=_child, args=(port, path, negotiate, share, per_proc, queue), daemon=True
                )
                child.start()
                children.append(child)
            reports = [queue.get(timeout=1800) for _ in children]
            cpu1 = read_cpu_seconds(pid)
            opened = sum(r[1] for r in reports)
            elapsed = max(r[3] for r in reports) - min(r[2] for r in reports)
            errors: dict[str, int] = {}
            for report in reports:
                for key, value in report[4].items():
                    errors[key] = errors.get(key, 0) + value
            time.sleep(2.0)
            rss1 = read_rss_kib(pid)
            cpu_idle0, wall0 = read_cpu_seconds(pid), time.monotonic()
            if args.profile:
                # py-spy samples the idle window: a collapsed-stack file per target and level.
                subprocess.run(
                    [
                        "py-spy",
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(int(args.idle)),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(common.LOG_DIR / f"capacity-{name}-{level}.stacks"),
                    ],
                    check=False,
                    capture_output=True,
                )
                time.sleep(max(0.0, wall0 + args.idle - time.monotonic()))
            else:
                time.sleep(args.idle)
            cpu_idle1, wall1 = read_cpu_seconds(pid), time.monotonic()
            echo = common.run_async(_echo_probe(port, path, negotiate, args.echo))
            closed_at = time.monotonic()
            for child in children:
                child.kill()
            recovery = common.run_async(_first_success(port, path, negotiate, closed_at))
            for child in children:
                child.join()
        finally:
            for child in children:
                if child.is_alive():
                    child.kill()
            common.stop([server])
    result: dict[str, Any] = {
        "target": name,
        "level": level,
        "opened": opened,
        "errors": errors,
        "connect_per_s": round(opened / elapsed, 1) if elapsed else None,
        "server_us_per_connect": round((cpu1 - cpu0) / opened * 1e6)
        if opened and cpu0 is not None and cpu1 is not None
        else None,
        "rss_kib_per_conn": round((rss1 - rss0) / opened, 2) if opened and rss0 and rss1 else None,
        "rss_mib": round(rss1 / 1024, 1) if rss1 else None,
        "idle_cpu_pct": round((cpu_idle1 - cpu_idle0) / (wall1 - wall0) * 100, 2)
        if cpu_idle0 is not None and cpu_idle1 is not None
        else None,
        "recovery_s": round(recovery, 3),
        **echo,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    p = common.argument_parser(
        __doc__, "2,000 and 5,000 connections, short windows", "hub,bare[,hub-base]"
    )
    p.add_argument("--levels", help="comma-separated connection counts (default 10000,25000,50000)")
    p.add_argument("--procs", type=int, default=2, help="generator processes (default 2)")
    p.add_argument(
        "--concurrency", type=int, default=100, help="handshakes in flight (default 100)"
    )
    p.add_argument("--idle", type=float, help="idle window in seconds (default 30)")
    p.add_argument(
        "--profile", action="store_true", help="py-spy the idle window (bench/results/logs)"
    )
    p.add_argument("--echo", type=float, help="echo probe seconds (default 3)")
    args = common.parse(p, argv, common.ROOT / "bench" / "results" / "capacity.json")
    quick = args.quick
    levels = [
        int(x) for x in (args.levels or ("2000,5000" if quick else "10000,25000,50000")).split(",")
    ]
    args.idle = args.idle if args.idle is not None else (16.0 if quick else 30.0)
    args.echo = args.echo if args.echo is not None else (2.0 if quick else 3.0)
    runs = args.runs or 1
    default = [name for name in _targets() if name != "hub-uvicorn"]
    names = common.choices(args.only or ",".join(default), list(_targets()), "--only")
    common.prepare()
    limit = lift_file_limit(2 * max(levels) + 4096)
    if limit < max(levels) + 512:
        raise SystemExit(
            f"the open-files limit is {limit} and may not be raised here (hard limit, no "
            f"CAP_SYS_RESOURCE): {max(levels):,} connections need about {max(levels) + 512:,}; "
            f"measure up to {max(0, limit - 512):,} with --levels"
        )
    env = common.environment(["daphne", "twisted", "autobahn", "websockets", "picows"])
    results: list[dict[str, Any]] = []
    for level in levels:
        for run, order in common.rotations(names, runs):
            for name in order:
                row = measure(name, level, args)
                row["run"] = run
                results.append(row)
                common.print_progress(
                    f"[{level:,} run {run}] {name:9} {row['connect_per_s']:,.0f} conn/s, "
                    f"{row['rss_kib_per_conn']} KiB/conn, idle {row['idle_cpu_pct']} % CPU, "
                    f"echo p50/p99 {row['echo_p50_ms']}/{row['echo_p99_ms']} ms, "
                    f"recovery {row['recovery_s']} s, errors {row['errors'] or 0}"
                )
    print(table(results, names, levels))
    common.write_results(args.out, env, levels=levels, results=results)
    return 0


def table(results: list[dict[str, Any]], names: tuple[str, ...], levels: list[int]) -> str:
    """Medians per (level, target) and the hub / bare ratios."""
    import statistics

    def med(level: int, name: str, key: str) -> float | None:
        values = [
            r[key]
            for r in results
            if r["level"] == level and r["target"] == name and r[key] is not None
        ]
        return statistics.median(values) if values else None

    lines = common.md_head(
        "connections",
        "target",
        "connect/s",
        "server µs/connect",
        "RSS/conn KiB",
        "RSS MiB",
        "idle CPU % of a core",
        "echo p50 / p99 ms",
        "recovery s",
    )
    for level in levels:
        for name in names:
            lines.append(
                common.md_row(
                    f"{level:,}",
                    name,
                    common.fmt(med(level, name, "connect_per_s")),
                    common.fmt(med(level, name, "server_us_per_connect")),
                    common.fmt(med(level, name, "rss_kib_per_conn"), 1),
                    common.fmt(med(level, name, "rss_mib"), 0),
                    common.fmt(med(level, name, "idle_cpu_pct"), 1),
                    common.pair(
                        med(level, name, "echo_p50_ms"), med(level, name, "echo_p99_ms"), 2
                    ),
                    common.fmt(med(level, name, "recovery_s"), 2),
                )
            )
        if "hub" in names and "bare" in names:
            lines.append(
                common.md_row(
                    f"{level:,}",
                    "hub / bare",
                    common.fmt(
                        common.ratio(
                            med(level, "hub", "connect_per_s"), med(level, "bare", "connect_per_s")
                        ),
                        2,
                    ),
                    "",
                    common.fmt(
                        common.ratio(
                            med(level, "hub", "rss_kib_per_conn"),
                            med(level, "bare", "rss_kib_per_conn"),
                        ),
                        2,
                    ),
                    "",
                    "",
                    "",
                    "",
                )
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
