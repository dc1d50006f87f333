"""Group broadcast across two server processes on one Redis: the hub against its references.

    python bench/broadcast.py            # 3 interleaved runs + the hub's scaling: ~10 minutes
    python bench/broadcast.py --quick    # 1 short run: ~2 minutes

Every measurement starts a fresh pair of server processes (A and B) of one target on one
Redis. N receivers, half on A and half on B, join one group; one sender on A keeps K
broadcasts in flight. Targets:

* ``hub-pubsub`` / ``hub-redis``: the package's ``BroadcastHub`` on two Daphne workers with
  ``RedisPubSubChannelLayer`` / the classic ``RedisChannelLayer`` (the backplane turns on by
  itself with either),
* ``consumer-redis`` / ``consumer-pubsub``: a plain Channels consumer (``group_add`` on
  connect, ``group_send`` per broadcast) on the same two layers: the reference the goal is
  stated against,
* ``bare``: a ``websockets`` server pair with its own Redis pub/sub backplane: the Python
  ceiling,
* ``hub-redis-pool`` / ``consumer-redis-pool`` (only with ``--only``): the classic layer with
  channels_redis ``max_connections`` raised, for when the defaults fail.

Redis is ``REDIS_URL`` when set, else a private ``redis-server`` on a free port, stopped at
the end (so ``INFO commandstats`` sees nothing but the benchmark). Prints the medians, the
hub/consumer and hub/bare ratios and the hub's scaling over N, and writes everything to
``bench/results/broadcast.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import BENCH_DIR, LOG_DIR, PYTHON, ROOT, fmt, md_head, md_row, pair
from bench.loadgen import MEASURED_MARKER, redis_info

# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Target:
    """A server pair under test: what to start and where its clients connect."""

    name: str
    role: str  # "hub", "consumer" or "bare": what the ratios compare
    kind: str  # "daphne", "uvicorn" or "bare"
    layer: str | None  # channel layer of a Daphne target: "pubsub" or "redis"
    path: str  # receivers' path; "{group}" is replaced by the measurement's group
    sender_path: str
    description: str
    pooled: bool = False  # pass channels_redis ``max_connections`` (Settings.pool)
    metrics: bool = False  # SIGNALR["METRICS"] on (BENCH_METRICS=1)

    def command(self, port: int, redis_url: str, prefix: str) -> list[str]:
        """The server's command line for ``port``."""
        if self.kind == "daphne":
            return common.daphne_command(port)
        if self.kind == "uvicorn":
            return common.uvicorn_command(port)
        script = str(BENCH_DIR / "servers" / "bare_broadcast.py")
        return [PYTHON, script, "--port", str(port), "--redis-url", redis_url, "--prefix", prefix]

    def env(self, redis_url: str, pool: int) -> dict[str, str]:
        """Environment of both servers: the bench settings with this target's layer."""
        env = common.django_env()
        env.pop("BENCH_REDIS_MAX_CONNECTIONS", None)
        if self.layer:
            env["BENCH_CHANNEL_LAYER"] = self.layer
            env["BENCH_REDIS_URL"] = redis_url
        if self.pooled:
            env["BENCH_REDIS_MAX_CONNECTIONS"] = str(pool)
        if self.metrics:
            env["BENCH_METRICS"] = "1"
        return env


HUB, CONSUMER = "/hubs/broadcast", "/ws/broadcast"
TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("hub-pubsub", "hub", "daphne", "pubsub", HUB, HUB, "BroadcastHub, pub/sub layer"),
        Target("hub-redis", "hub", "daphne", "redis", HUB, HUB, "BroadcastHub, classic layer"),
        Target(
            "hub-pubsub-uvicorn",
            "hub",
            "uvicorn",
            "pubsub",
            HUB,
            HUB,
            "BroadcastHub, pub/sub layer, on uvicorn",
        ),
        Target(
            "consumer-redis",
            "consumer",
            "daphne",
            "redis",
            CONSUMER + "/{group}",
            CONSUMER,
            "Channels consumer, classic layer",
        ),
        Target(
            "consumer-pubsub",
            "consumer",
            "daphne",
            "pubsub",
            CONSUMER + "/{group}",
            CONSUMER,
            "Channels consumer, pub/sub layer",
        ),
        Target("bare", "bare", "bare", None, "/b", "/b", "websockets + own Redis pub/sub"),
        Target(
            "hub-redis-pool",
            "hub",
            "daphne",
            "redis",
            HUB,
            HUB,
            "BroadcastHub, classic layer, max_connections raised",
            pooled=True,
        ),
        Target(
            "hub-pubsub-metrics",
            "hub",
            "daphne",
            "pubsub",
            HUB,
            HUB,
            "BroadcastHub, pub/sub layer, metrics on",
            metrics=True,
        ),
        Target(
            "consumer-redis-pool",
            "consumer",
            "daphne",
            "redis",
            CONSUMER + "/{group}",
            CONSUMER,
            "Channels consumer, classic layer, max_connections raised",
            pooled=True,
        ),
    )
}
if common.baseline_root() is not None:  # BENCH_BASELINE: the same hub from another commit
    TARGETS["hub-pubsub-base"] = Target(
        "hub-pubsub-base", "hub", "daphne", "pubsub", HUB, HUB, "BroadcastHub of BENCH_BASELINE"
    )
DEFAULT_TARGETS = ("hub-pubsub", "hub-redis", "consumer-redis", "consumer-pubsub", "bare")
MAIN_HUB = "hub-pubsub"
GOAL_RATIO = 10.0


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a run, recorded in the JSON so results can be compared."""

    runs: int = 3
    receivers: int = 1000
    in_flight: int = 4
    duration: float = 10.0
    warmup: float = 2.0
    payload_size: int = 64
    concurrency: int = 50
    connect_cap: float = 120.0
    stall_timeout: float = 5.0
    scale: tuple[int, ...] = (100, 1000, 5000)
    scale_target: str = MAIN_HUB
    pool: int = 20_000
    client: str | None = None
    targets: tuple[str, ...] = DEFAULT_TARGETS


QUICK = {"runs": 1, "duration": 3.0, "warmup": 1.0}


# --------------------------------------------------------------------------- Redis


NO_DISK = ("--save", "", "--appendonly", "no")


@contextlib.contextmanager
def redis_server(log_path: Path) -> Iterator[tuple[str, str, int | None]]:
    """Yield ``(url, origin, pid)``: ``REDIS_URL`` when set, else a private ``redis-server``.

    The private server keeps nothing on disk and is stopped afterwards; being private, its
    ``INFO commandstats`` counts only what the servers under test sent.
    """
    url = os.environ.get("REDIS_URL")
    if url:
        yield url, "REDIS_URL (shared: other clients' commands would count too)", None
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed and REDIS_URL is not set")
    with tempfile.TemporaryDirectory() as folder:
        options = ["--bind", "127.0.0.1", "--dir", folder, *NO_DISK]

        def command(port: int) -> list[str]:
            return [binary, "--port", str(port), *options]

        with common.servers(command, [log_path]) as [(port, pid)]:
            yield f"redis://127.0.0.1:{port}/0", f"private redis-server (pid {pid})", pid


def redis_version(url: str) -> str | None:
    """``redis_version`` from ``INFO server`` (for the record; None when unreadable)."""
    try:
        info = asyncio.run(redis_info(url, ("server",)))
    except (OSError, EOFError, RuntimeError, ValueError):
        return None
    match = re.search(r"redis_version:(\S+)", info)
    return match.group(1) if match else None


# --------------------------------------------------------------------------- server pairs


@contextlib.contextmanager
def server_pair(
    target: Target, logs: Sequence[Path], redis_url: str, pool: int
) -> Iterator[list[tuple[int, int]]]:
    """Start servers A and B of ``target`` side by side; yield ``[(port, pid), ...]``.

    Both start at once (Daphne takes seconds to import Django) and are stopped with
    SIGTERM, then killed if they do not exit within 10 s.
    """
    prefix = f"bench.{secrets.token_hex(4)}."
    command = functools.partial(target.command, redis_url=redis_url, prefix=prefix)
    cwd = common.baseline_root() if target.name.endswith("-base") else None
    with common.servers(command, logs, target.env(redis_url, pool), cwd) as servers:
        yield servers


# --------------------------------------------------------------------------- one measurement


@dataclass
class Measurement:
    """One target at one N in one run."""

    target: str
    receivers: int
    run: int
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    server_errors: int = 0
    teardown_errors: int = 0
    exceptions: dict[str, int] = field(default_factory=dict)
    teardown_exceptions: dict[str, int] = field(default_factory=dict)
    server_traceback: str | None = None
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        """What makes the figures suspect or shows a failure, shortest first."""
        found = []
        if self.error:
            lines = [line for line in self.error.splitlines() if line.strip()]
            found.append(lines[-1].strip()[:300] if lines else "failed")
        r = self.result
        if r and r.get("receivers_joined", 0) < r.get("receivers", 0):
            found.append(f"joined {r.get('receivers_joined')}/{r.get('receivers')}")
        for key in ("stalled_broadcasts", "duplicates", "reordered", "foreign"):
            if r.get(key):
                found.append(f"{key}={r[key]}")
        if r and r.get("receivers_alive_at_end", 0) < r.get("receivers_joined", 0):
            found.append(f"alive at end {r['receivers_alive_at_end']}/{r['receivers_joined']}")
        errors = {**r.get("connect_errors", {}), **r.get("errors", {})}
        found += [f"{n}x {e}" for e, n in errors.items()]
        if self.server_errors:
            found.append(f"{self.server_errors} error line(s) in server logs while measuring")
        if self.teardown_errors:
            found.append(f"{self.teardown_errors} error line(s) in server logs at teardown")
        return found

    @property
    def failed(self) -> bool:
        """No usable figures, or a group that never had all its receivers."""
        r = self.result
        return bool(
            self.error
            or not r.get("deliveries")
            or r.get("receivers_joined", 0) < r.get("receivers", 0)
        )


def loadgen_command(
    settings: Settings,
    target: Target,
    n: int,
    group: str,
    servers: Sequence[tuple[int, int]],
    redis_url: str,
    redis_pid: int | None,
) -> list[str]:
    """The generator's command line for one measurement."""
    (port_a, pid_a), (port_b, pid_b) = servers
    path = target.path.format(group=group)
    cmd = common.loadgen_command(
        "broadcast", f"ws://127.0.0.1:{port_a}{path}", pid_a, client=settings.client
    )
    cmd += ["--remote-url", f"ws://127.0.0.1:{port_b}{path}", "--remote-pid", str(pid_b)]
    cmd += ["--sender-url", f"ws://127.0.0.1:{port_a}{target.sender_path}"]
    cmd += ["--redis-url", redis_url, "--group", group, "-n", str(n)]
    cmd += ["-k", str(settings.in_flight), "-d", str(settings.duration)]
    cmd += ["--warmup", str(settings.warmup), "--payload-size", str(settings.payload_size)]
    cmd += ["--concurrency", str(settings.concurrency)]
    cmd += ["--connect-cap", str(settings.connect_cap)]
    cmd += ["--stall-timeout", str(settings.stall_timeout)]
    if redis_pid is not None:
        cmd += ["--redis-pid", str(redis_pid)]
    return cmd


def run_loadgen(cmd: list[str], budget: float, logs: Sequence[Path]) -> tuple[str, str, list[int]]:
    """Run the generator; return stdout, stderr and the logs' sizes when measuring ended.

    The generator prints :data:`MEASURED_MARKER` before closing its connections, so server
    errors can be told apart: before it they hit the measured traffic, after it they come
    from the mass disconnect.
    """
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    timer = threading.Timer(budget, proc.kill)
    timer.start()
    sizes: list[int] = []
    stderr: list[str] = []
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stderr:
            if MEASURED_MARKER in line and not sizes:
                sizes = [p.stat().st_size if p.exists() else 0 for p in logs]
            else:
                stderr.append(line)
        stdout = proc.stdout.read()
        proc.wait()
    finally:
        timer.cancel()
    if proc.returncode != 0:
        killed = " (killed: over its time budget)" if proc.returncode == -signal.SIGKILL else ""
        raise RuntimeError(f"loadgen exit {proc.returncode}{killed}: {''.join(stderr)[-2000:]}")
    return stdout, "".join(stderr), sizes


def measure(
    settings: Settings, target: Target, n: int, run: int, redis_url: str, redis_pid: int | None
) -> Measurement:
    """Start a fresh server pair, run the broadcast against it, stop it, read its logs."""
    m = Measurement(target.name, n, run)
    began = time.monotonic()
    logs = [LOG_DIR / f"broadcast-{target.name}-n{n}-run{run}-{side}.log" for side in "AB"]
    m.logs = [str(p.relative_to(ROOT)) for p in logs]
    group = f"bench-{run}-{n}-{secrets.token_hex(3)}"
    budget = settings.connect_cap + settings.warmup + settings.duration + 120
    sizes: list[int] = []
    try:
        with server_pair(target, logs, redis_url, settings.pool) as servers:
            cmd = loadgen_command(settings, target, n, group, servers, redis_url, redis_pid)
            stdout, _stderr, sizes = run_loadgen(cmd, budget, logs)
            m.result = json.loads(stdout.strip().splitlines()[-1])
    except (RuntimeError, json.JSONDecodeError, IndexError) as exc:
        m.error = f"{type(exc).__name__}: {exc}"
    exceptions: Counter[str] = Counter()
    teardown: Counter[str] = Counter()
    for i, path in enumerate(logs):
        text = common.read_log(path)
        cut = sizes[i] if i < len(sizes) else len(text.encode())
        raw = text.encode()
        during, after = raw[:cut].decode(errors="replace"), raw[cut:].decode(errors="replace")
        hits, kinds, first = common.log_errors(during)
        late_hits, late_kinds, late_first = common.log_errors(after)
        m.server_errors += hits
        m.teardown_errors += late_hits
        exceptions.update(kinds)
        teardown.update(late_kinds)
        if m.server_traceback is None and (first or late_first):
            where = "while measuring" if first else "at teardown"
            m.server_traceback = f"[{path.name}, {where}]\n{first or late_first}"
    m.exceptions, m.teardown_exceptions = dict(exceptions), dict(teardown)
    m.seconds = round(time.monotonic() - began, 1)
    return m


# --------------------------------------------------------------------------- aggregation


METRICS = (
    "deliveries_per_s",
    "broadcasts_per_s",
    "p50_ms",
    "p99_ms",
    "local_p50_ms",
    "remote_p50_ms",
    "server_us_per_delivery",
    "server_cpu_pct_total",
    "client_cpu_pct",
    "redis_cpu_pct",
    "other_cpu_pct",
    "redis_commands_per_broadcast",
    "redis_publish_per_broadcast",
    "redis_clients",
    "receivers_joined",
    "connect_rate",
)


def medians(measurements: Sequence[Measurement]) -> dict[str, dict[int, dict[str, float]]]:
    """Median of every metric per target and N over the runs that produced figures."""
    samples: dict[str, dict[int, dict[str, list[float]]]] = {}
    for m in measurements:
        r = dict(m.result)
        if not r.get("deliveries"):
            continue
        cpu = r.get("server_cpu_pct") or []
        if cpu and None not in cpu:
            r["server_cpu_pct_total"] = sum(cpu)
        common.add_samples(samples.setdefault(m.target, {}).setdefault(m.receivers, {}), r, METRICS)
    return {
        target: {n: common.median_row(row) for n, row in by_n.items()}
        for target, by_n in samples.items()
    }


def best_consumer(
    meds: dict[str, dict[int, dict[str, float]]], n: int, measurements: Sequence[Measurement]
) -> str | None:
    """The consumer target with the most deliveries/s at ``n`` among those that never failed.

    A consumer whose group did not fill in some run is left out: its rate would be for
    fewer receivers than asked for.
    """
    failed = {m.target for m in measurements if m.receivers == n and m.failed}
    candidates = [
        (row[n]["deliveries_per_s"], name)
        for name, row in meds.items()
        if TARGETS[name].role == "consumer"
        and name not in failed
        and n in row
        and "deliveries_per_s" in row[n]
    ]
    return max(candidates)[1] if candidates else None


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference to 2 decimals, None when either is missing."""
    return common.ratio(value, reference, digits=2)


def evaluate(
    settings: Settings,
    meds: dict[str, dict[int, dict[str, float]]],
    measurements: Sequence[Measurement],
) -> list[dict[str, Any]]:
    """The goal (hub vs best consumer) and the informational ratios at the main N."""
    n = settings.receivers

    def rate(name: str | None) -> float | None:
        return meds.get(name or "", {}).get(n, {}).get("deliveries_per_s")

    best = best_consumer(meds, n, measurements)
    rows: list[dict[str, Any]] = []
    r = ratio(rate(MAIN_HUB), rate(best))
    verdict = common.verdict(r, ">=", GOAL_RATIO)
    rows.append(
        {
            "goal": f"broadcast deliveries/s at N={n:,}",
            "ratio_of": f"{MAIN_HUB} / {best or 'consumer (none usable)'}",
            "ratio": r,
            "threshold": f">= {GOAL_RATIO:g}",
            "result": verdict,
        }
    )
    for hub, ref in (
        (MAIN_HUB, "bare"),
        (MAIN_HUB, "consumer-pubsub"),
        ("hub-redis", "consumer-redis"),
        ("hub-redis-pool", "consumer-redis-pool"),
    ):
        if hub in settings.targets and ref in settings.targets:
            rows.append(
                {
                    "goal": f"deliveries/s at N={n:,}",
                    "ratio_of": f"{hub} / {ref}",
                    "ratio": ratio(rate(hub), rate(ref)),
                    "threshold": "",
                    "result": "info",
                }
            )
    scale = meds.get(settings.scale_target, {})
    per_bcast = [
        scale[n]["redis_commands_per_broadcast"]
        for n in settings.scale
        if "redis_commands_per_broadcast" in scale.get(n, {})
    ]
    if len(per_bcast) >= 2:
        spread = round(max(per_bcast) / min(per_bcast), 2) if min(per_bcast) else None
        rows.append(
            {
                "goal": "Redis commands per broadcast constant in N",
                "ratio_of": f"{settings.scale_target}: max / min over N = "
                + ", ".join(f"{x:,}" for x in settings.scale),
                "ratio": spread,
                "threshold": "<= 1.2",
                "result": common.verdict(spread, "<=", 1.2),
            }
        )
    return rows


# --------------------------------------------------------------------------- report


def cpu_cell(row: dict[str, float]) -> str:
    """Where the machine's CPU went during the window, in % of one core.

    A slow target on an idle machine is waiting on something; one that shares the machine
    with busy strangers (``others``) is starved, and only its µs/delivery is comparable.
    """
    keys = ("server_cpu_pct_total", "client_cpu_pct", "redis_cpu_pct", "other_cpu_pct")
    return " / ".join(fmt(row.get(k)) for k in keys)


def figure_cells(row: dict[str, float], local_remote: bool = False) -> list[str]:
    """The cells both tables show for one row of medians (``local_remote``: that pair too)."""
    cells = [fmt(row.get("deliveries_per_s")), pair(row.get("p50_ms"), row.get("p99_ms"))]
    if local_remote:
        cells.append(pair(row.get("local_p50_ms"), row.get("remote_p50_ms")))
    return [
        *cells,
        fmt(row.get("server_us_per_delivery")),
        cpu_cell(row),
        fmt(row.get("redis_commands_per_broadcast"), 2),
        fmt(row.get("redis_publish_per_broadcast"), 2),
    ]


def markdown_report(
    settings: Settings,
    meds: dict[str, dict[int, dict[str, float]]],
    measurements: Sequence[Measurement],
    goals: list[dict[str, Any]],
    notes: list[str],
) -> str:
    """The human-readable summary printed at the end of a run."""
    n = settings.receivers
    runs = {m.run for m in measurements}
    cpu, cmds = "CPU % servers (A+B) / generator / Redis / others", "Redis cmds / broadcast"
    lines = [
        f"## Broadcast across two servers: medians of {len(runs)} run(s)",
        "",
        f"N={n:,} receivers (half on server A, half on B), one sender on A, "
        f"{settings.in_flight} broadcasts in flight, {settings.payload_size} B payload, "
        f"{settings.duration:g} s measured after {settings.warmup:g} s warm-up.",
        "",
        *md_head(
            "target",
            "deliveries/s",
            "p50 / p99 ms",
            "local / remote p50 ms",
            "server µs/delivery",
            cpu,
            cmds,
            "PUBLISH / broadcast",
            "failed runs",
            "issues",
        ),
    ]
    for name in settings.targets:
        row = meds.get(name, {}).get(n, {})
        ms_ = [m for m in measurements if m.target == name and m.receivers == n]
        failed = sum(m.failed for m in ms_)
        issues = sum(bool(m.problems) for m in ms_)
        cells = figure_cells(row, local_remote=True)
        lines.append(md_row(name, *cells, f"{failed}/{len(ms_)}", issues or ""))
    lines += ["", *md_head("goal", "ratio of", "ratio", "threshold", "result")]
    for g in goals:
        lines.append(
            md_row(g["goal"], g["ratio_of"], fmt(g["ratio"], 2), g["threshold"], g["result"])
        )
    scale = meds.get(settings.scale_target, {})
    if settings.scale and settings.scale_target in settings.targets:
        lines += [
            "",
            f"Scaling of {settings.scale_target} with N:",
            "",
            *md_head(
                "N",
                "deliveries/s",
                "p50 / p99 ms",
                "server µs/delivery",
                cpu,
                cmds,
                "PUBLISH / broadcast",
                "failed runs",
            ),
        ]
        for size in sorted(set(settings.scale)):
            ms_ = [
                m for m in measurements if m.target == settings.scale_target and m.receivers == size
            ]
            failed = sum(m.failed for m in ms_)
            lines.append(
                md_row(f"{size:,}", *figure_cells(scale.get(size, {})), f"{failed}/{len(ms_)}")
            )
    return common.with_notes(lines, notes)


def report_notes(
    settings: Settings,
    meds: dict[str, dict[int, dict[str, float]]],
    measurements: Sequence[Measurement],
) -> list[str]:
    """Generator headroom, and every measurement's problems with the exceptions behind them."""
    notes = []
    busy = common.busiest_generator((m.result, (m.target, m.receivers)) for m in measurements)
    if busy:
        top, (target, n) = busy
        notes.append(
            f"generator: at most {top:.0f} % of a core ({target}, N={n:,}); a target whose "
            "generator neared 100 % is generator-bound and its rate a lower bound."
        )
    for m in measurements:
        if not m.problems:
            continue
        detail = f"{m.target} N={m.receivers:,} run {m.run}: {'; '.join(m.problems)}"
        if m.exceptions:
            detail += "; exceptions while measuring: " + ", ".join(
                f"{n}x {e}" for e, n in Counter(m.exceptions).most_common(3)
            )
        if m.teardown_exceptions:
            detail += "; at teardown: " + ", ".join(
                f"{n}x {e}" for e, n in Counter(m.teardown_exceptions).most_common(3)
            )
        notes.append(f"{detail} (logs: {', '.join(m.logs)})")
    return notes


def environment(redis_url: str, origin: str) -> dict[str, Any]:
    """The harness's environment record plus the Redis side."""
    env = common.environment(extra_packages=("channels_redis", "redis", "signalr-django"))
    env["redis"] = {"origin": origin, "version": redis_version(redis_url)}
    return env


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Path]:
    """Command line to :class:`Settings` (``--quick`` sets shorter defaults, flags still win)."""
    p = common.argument_parser(
        __doc__, "1 short run (~2 minutes)", f"comma-separated targets ({','.join(TARGETS)})"
    )
    p.add_argument("-n", "--receivers", type=int, help="receivers for the main table (1000)")
    p.add_argument("-k", "--in-flight", type=int, help="broadcasts in flight (default 4)")
    p.add_argument("-d", "--duration", type=float, help="measured seconds (default 10)")
    p.add_argument("--warmup", type=float, help="warm-up seconds (default 2)")
    p.add_argument("--payload-size", type=int, help="payload bytes (default 64)")
    p.add_argument("--concurrency", type=int, help="handshakes in flight per server (50)")
    p.add_argument("--connect-cap", type=float, help="stop opening receivers after (s)")
    p.add_argument("--stall-timeout", type=float, help="give up on a broadcast after (s)")
    p.add_argument("--scale", help="receiver counts for the scaling table (100,1000,5000)")
    p.add_argument("--no-scale", action="store_true", help="skip the scaling table")
    p.add_argument("--scale-target", choices=list(TARGETS), help=f"default {MAIN_HUB}")
    p.add_argument("--pool", type=int, help="max_connections of the *-pool targets (20000)")
    common.add_client(p)
    args = common.parse(p, argv, common.RESULTS_DIR / "broadcast.json")

    values = common.given(
        args,
        QUICK,
        (
            "runs",
            "receivers",
            "in_flight",
            "duration",
            "warmup",
            "payload_size",
            "concurrency",
            "connect_cap",
            "stall_timeout",
            "scale_target",
            "pool",
            "client",
        ),
    )
    if args.only:
        values["targets"] = common.choices(args.only, TARGETS, "--only")
    if args.scale:
        values["scale"] = tuple(int(x) for x in args.scale.split(",") if x.strip())
    if args.no_scale:
        values["scale"] = ()
    return Settings(**values), args.out


def plan(settings: Settings) -> Iterator[tuple[int, Target, int]]:
    """Run order: each run visits every target (rotated per run), then the scaling points.

    The scaling target's point at the main N is the main table's measurement, not a repeat;
    the scaling table is only made when the scaling target is among the targets.
    """
    names = list(settings.targets)
    scale = settings.scale if settings.scale_target in names else ()
    for run, order in common.rotations(names, settings.runs):
        for name in order:
            yield run, TARGETS[name], settings.receivers
        for size in scale:
            if size != settings.receivers:
                yield run, TARGETS[settings.scale_target], size


def progress(m: Measurement) -> str:
    """One line per measurement while the benchmark runs."""
    r = m.result
    if m.error and not r:
        head = f"FAILED {m.problems[0] if m.problems else m.error[:300]}"
    else:
        cpu = r.get("server_cpu_pct") or []
        head = (
            f"{fmt(r.get('deliveries_per_s'))} deliveries/s, p50/p99 "
            f"{pair(r.get('p50_ms'), r.get('p99_ms'))} ms (local/remote "
            f"{pair(r.get('local_p50_ms'), r.get('remote_p50_ms'))}), "
            f"{fmt(r.get('server_us_per_delivery'))} µs/delivery, servers "
            f"{' + '.join(fmt(c) for c in cpu)} %, generator {fmt(r.get('client_cpu_pct'))} %, "
            f"Redis {fmt(r.get('redis_cpu_pct'))} %, others {fmt(r.get('other_cpu_pct'))} %, "
            f"Redis {fmt(r.get('redis_commands_per_broadcast'), 2)} cmds "
            f"({fmt(r.get('redis_publish_per_broadcast'), 2)} PUBLISH)/broadcast, "
            f"joined {fmt(r.get('receivers_joined'))} in {fmt(r.get('connect_seconds'), 1)} s"
        )
    extra = f"  [{'; '.join(m.problems)}]" if m.problems and r else ""
    return f"[run {m.run}] {m.target:15} N={m.receivers:<5} {head} ({m.seconds:.0f} s){extra}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plan, print the report, write the JSON. Exit 0 unless the harness itself broke."""
    settings, out = parse_args(argv)
    common.prepare()
    notes: list[str] = []
    if any(TARGETS[t].role == "hub" for t in settings.targets):
        ok, detail = common.hub_ready()
        if not ok:
            print(f"hub not available, skipping it:\n{detail}", file=sys.stderr)
            notes.append("hub targets skipped: the bench project does not serve them yet")
            kept = tuple(t for t in settings.targets if TARGETS[t].role != "hub")
            settings = Settings(**{**asdict(settings), "targets": kept, "scale": ()})
    if not settings.targets:
        print("nothing to run", file=sys.stderr)
        return 1

    measurements: list[Measurement] = []
    with redis_server(LOG_DIR / "broadcast-redis.log") as (redis_url, origin, redis_pid):
        print(f"Redis: {origin} at {redis_url}", file=sys.stderr, flush=True)
        env = environment(redis_url, origin)
        for run, target, n in plan(settings):
            m = measure(settings, target, n, run, redis_url, redis_pid)
            measurements.append(m)
            shown = m.server_traceback if m.server_errors or m.error else None
            common.print_progress(progress(m), shown)

    meds = medians(measurements)
    goals = evaluate(settings, meds, measurements)
    notes += report_notes(settings, meds, measurements) + common.source_notes(env)
    print(markdown_report(settings, meds, measurements, goals, notes))

    common.write_results(
        out,
        env,
        settings=asdict(settings),
        targets={n: asdict(TARGETS[n]) for n in settings.targets},
        medians={t: {str(n): row for n, row in by_n.items()} for t, by_n in meds.items()},
        goals=goals,
        notes=notes,
        measurements=[
            asdict(m) | {"problems": m.problems, "failed": m.failed} for m in measurements
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
