"""Run the whole benchmark in one command and compare the hub with its references.

    python bench/run.py            # 3 interleaved runs, ~4-5 minutes on 2 cores
    python bench/run.py --quick    # 1 short run, ~1 minute

Targets, each in its own server process started fresh for every scenario of every run (so the
CPU and RSS read from /proc belong to that target alone, and no run inherits another's state):

* ``hub``: the package's ``EchoHub`` at ``/hubs/echo`` on Daphne,
* ``consumer``: a plain Channels ``AsyncWebsocketConsumer`` at ``/ws/consumer`` on Daphne,
  same settings (the reference the hub's goals are stated against),
* ``bare``: a bare ``websockets`` server (the Python ceiling, and the proof that the load
  generator is not the bottleneck).

Prints a Markdown table of medians, the hub/consumer and hub/bare ratios with PASS/FAIL per goal
(informational: the exit status is 0 whenever the harness itself worked) and writes everything
to ``bench/results/latest.json``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import BENCH_DIR, LOG_DIR, PYTHON, RESULTS_DIR, ROOT, fmt, md_head, md_row, pair

# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Target:
    """One server under test: how to start it and which path the generator connects to."""

    name: str
    kind: str  # "daphne", "uvicorn" or "bare"
    path: str
    description: str
    metrics: bool = False  # SIGNALR["METRICS"] on (BENCH_METRICS=1)

    def command(self, port: int) -> list[str]:
        """The server's command line for ``port``."""
        if self.kind == "daphne":
            return common.daphne_command(port)
        if self.kind == "uvicorn":
            return common.uvicorn_command(port)
        return [PYTHON, str(BENCH_DIR / "servers" / "bare_websockets.py"), "--port", str(port)]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("hub", "daphne", "/hubs/echo", "signalr_django EchoHub on Daphne"),
        Target("hub-uvicorn", "uvicorn", "/hubs/echo", "signalr_django EchoHub on uvicorn"),
        Target(
            "hub-metrics", "daphne", "/hubs/echo", "EchoHub on Daphne, metrics on", metrics=True
        ),
        Target("consumer", "daphne", "/ws/consumer", "plain Channels consumer on Daphne"),
        Target("bare", "bare", "/hubs/echo", "bare websockets server (Python ceiling)"),
    )
}
if common.baseline_root() is not None:  # BENCH_BASELINE: the same hub from another commit
    TARGETS["hub-base"] = Target(
        "hub-base", "daphne", "/hubs/echo", "EchoHub of the BENCH_BASELINE checkout"
    )
SCENARIOS = ("echo", "idle")
ONLY_ON_REQUEST = ("hub-uvicorn", "hub-metrics")  # measured with --only


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a run, recorded in the JSON so results can be compared."""

    runs: int = 3
    connections: int = 50
    duration: float = 10.0
    warmup: float = 2.0
    latency_duration: float = 3.0
    idle_connections: int = 2000
    idle_concurrency: int = 50
    settle: float = 2.0
    connect_cap: float = 60.0
    negotiate: bool = False
    procs: int = 1
    client: str | None = None
    targets: tuple[str, ...] = tuple(t for t in TARGETS if t not in ONLY_ON_REQUEST)
    scenarios: tuple[str, ...] = SCENARIOS


QUICK = {
    "runs": 1,
    "duration": 3.0,
    "warmup": 1.0,
    "latency_duration": 1.5,
    "idle_connections": 500,
    "settle": 1.0,
}


@dataclass(frozen=True)
class Goal:
    """A target the hub must meet relative to a reference (``ratio`` = hub / reference)."""

    name: str
    metric: str
    reference: str
    op: str  # ">=" or "<="
    threshold: float

    def check(self, ratio: float | None) -> str:
        """PASS/FAIL, or n/a when a figure is missing."""
        return common.verdict(ratio, self.op, self.threshold)


GOALS = (
    Goal("echo throughput", "throughput", "consumer", ">=", 0.9),
    Goal("echo p99 latency", "p99_ms", "consumer", "<=", 1.2),
    Goal("RSS per idle connection", "rss_kib_per_conn", "consumer", "<=", 1.1),
    Goal("connect rate", "connect_rate", "consumer", ">=", 1.0),
)
INFO_RATIOS = (("echo throughput vs bare", "throughput", "bare"),)


# --------------------------------------------------------------------------- server processes


@contextlib.contextmanager
def server_process(target: Target, log_path: Path) -> Iterator[tuple[int, int]]:
    """Start ``target`` on a free port, yield ``(port, pid)``, then stop it (SIGTERM, then kill).

    Daphne runs in the foreground as ``python -m daphne`` so the child's pid *is* the server:
    /proc/<pid> accounts for exactly the process that serves the connections.
    """
    cwd = common.baseline_root() if target.name.endswith("-base") else None
    env = common.django_env()
    if target.metrics:
        env["BENCH_METRICS"] = "1"
    with common.servers(target.command, [log_path], env, cwd) as [server]:
        yield server


# --------------------------------------------------------------------------- one measurement


@dataclass
class Measurement:
    """One scenario against one target in one run."""

    target: str
    scenario: str
    run: int
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    server_error_lines: int = 0
    server_traceback: str | None = None
    log: str = ""

    @property
    def problems(self) -> list[str]:
        """Anything that makes the figures suspect: failures, errors, wrong answers."""
        found = []
        if self.error:
            lines = [line for line in self.error.splitlines() if line.strip()]
            found.append(lines[-1].strip() if lines else "failed")
        r = self.result
        if r and r.get("connections_opened", 0) < r.get("connections", 0):
            found.append(f"opened {r.get('connections_opened')}/{r.get('connections')}")
        for key in ("wrong_result", "missing_result", "stalled"):
            if r.get(key):
                found.append(f"{key}={r[key]}")
        errors = {**r.get("errors", {}), **r.get("c1_errors", {})}
        found += [f"{n}x {e}" for e, n in errors.items()]
        if self.server_error_lines:
            found.append(f"{self.server_error_lines} error line(s) in server log")
        return found

    def progress(self, label: str, figures: str) -> str:
        """The progress line ``[run R] <label> <figures>``: FAILED and why instead of the
        figures after an error, the problems after them otherwise."""
        if self.error:
            return f"[run {self.run}] {label} FAILED {self.problems[0][:300]}"
        extra = f"  [{'; '.join(self.problems)}]" if self.problems else ""
        return f"[run {self.run}] {label} {figures}{extra}"


def loadgen_command(settings: Settings, scenario: str, url: str, pid: int) -> list[str]:
    """The generator's command line for one scenario."""
    cmd = common.loadgen_command(scenario, url, pid, settings.procs, settings.client)
    if settings.negotiate and url.endswith(TARGETS["hub"].path):
        cmd.append("--negotiate")
    if scenario == "echo":
        cmd += ["-c", str(settings.connections), "-d", str(settings.duration)]
        cmd += ["--warmup", str(settings.warmup)]
        cmd += ["--latency-duration", str(settings.latency_duration)]
    else:
        cmd += ["-k", str(settings.idle_connections), "--concurrency"]
        cmd += [str(settings.idle_concurrency), "--settle", str(settings.settle)]
        cmd += ["--connect-cap", str(settings.connect_cap)]
    return cmd


def measure(settings: Settings, target: Target, scenario: str, run: int) -> Measurement:
    """Start a fresh server, run one scenario against it, stop it, collect its log's errors."""
    budget = (
        settings.warmup + settings.duration + settings.latency_duration + 120
        if scenario == "echo"
        else settings.connect_cap + settings.settle + 180
    )
    return run_measurement(
        Measurement(target.name, scenario, run),
        target,
        LOG_DIR / f"{target.name}-{scenario}-run{run}.log",
        lambda url, pid: loadgen_command(settings, scenario, url, pid),
        budget,
    )


def run_measurement(
    m: Measurement,
    target: Target,
    log_path: Path,
    command: Callable[[str, int], list[str]],
    budget: float,
) -> Measurement:
    """Fill ``m``: the generator's ``command(url, pid)`` against a fresh server of ``target``.

    The server logs to ``log_path``; the generator gets ``budget`` seconds. Its JSON becomes
    ``m.result``, any failure ``m.error``, and the log's error lines and first traceback are
    read after the server has stopped.
    """
    m.log = str(log_path.relative_to(ROOT))
    try:
        with server_process(target, log_path) as (port, pid):
            proc = subprocess.run(
                command(f"ws://127.0.0.1:{port}{target.path}", pid),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=budget,
            )
            if proc.returncode != 0:
                m.error = f"loadgen exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"
            else:
                m.result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
        m.error = f"{type(exc).__name__}: {exc}"
    m.server_error_lines, _exceptions, m.server_traceback = common.log_errors(
        common.read_log(log_path)
    )
    return m


# --------------------------------------------------------------------------- aggregation


ECHO_METRICS = (
    "throughput",
    "server_us_per_msg",
    "p50_ms",
    "p99_ms",
    "c1_p50_ms",
    "c1_p99_ms",
    "server_cpu_pct",
    "client_cpu_pct",
)
IDLE_METRICS = (
    "connect_rate",
    "rss_kib_per_conn",
    "server_us_per_connect",
    "connect_p99_ms",
    "connections_opened",
)


def medians(measurements: Sequence[Measurement]) -> dict[str, dict[str, float | None]]:
    """Median of every metric per target over the runs that produced it."""
    samples: dict[str, dict[str, list[float]]] = {}
    for m in measurements:
        if m.result:
            metrics = ECHO_METRICS if m.scenario == "echo" else IDLE_METRICS
            common.add_samples(samples.setdefault(m.target, {}), m.result, metrics)
    return {target: dict(common.median_row(row)) for target, row in samples.items()}


def ratio(meds: dict[str, dict[str, float | None]], metric: str, ref: str) -> float | None:
    """hub / reference for one metric, or None when either side is missing."""
    return common.ratio(meds.get("hub", {}).get(metric), meds.get(ref, {}).get(metric))


# --------------------------------------------------------------------------- report


ECHO_COLUMNS = ("server µs/msg", "p50 / p99 ms", "C=1 p50 / p99 ms")
"""Titles of :func:`echo_cells` after the first (msgs/s, which each table titles itself)."""


def echo_cells(row: dict[str, float | None]) -> list[str]:
    """The echo figures of a row of medians: msgs/s, µs/msg, p50 / p99, C=1 p50 / p99."""
    return [
        fmt(row.get("throughput")),
        fmt(row.get("server_us_per_msg")),
        pair(row.get("p50_ms"), row.get("p99_ms"), 2),
        pair(row.get("c1_p50_ms"), row.get("c1_p99_ms"), 3),
    ]


def issues(measurements: Sequence[Measurement], target: str) -> int | str:
    """The ``issues`` cell: how many of ``target``'s measurements have problems ("" for none)."""
    return sum(bool(m.problems) for m in measurements if m.target == target) or ""


def markdown_report(
    settings: Settings,
    meds: dict[str, dict[str, float | None]],
    measurements: Sequence[Measurement],
    goals: list[dict[str, Any]],
    notes: list[str],
) -> str:
    """The human-readable summary printed at the end of a run."""
    runs = {m.run for m in measurements}
    lines = [
        f"## signalr_django benchmark: medians of {len(runs)} run(s)",
        "",
        f"echo: C={settings.connections}, {settings.duration:g} s after {settings.warmup:g} s "
        f"warm-up, 64 B payload; idle: K={settings.idle_connections}, "
        f"{settings.idle_concurrency} handshakes in flight.",
        "",
        *md_head(
            "target",
            "echo msgs/s",
            *ECHO_COLUMNS,
            "RSS/idle conn KiB",
            "connect/s",
            "server µs/connect",
            "issues",
        ),
    ]
    for name in settings.targets:
        row = meds.get(name, {})
        lines.append(
            md_row(
                name,
                *echo_cells(row),
                fmt(row.get("rss_kib_per_conn"), 1),
                fmt(row.get("connect_rate")),
                fmt(row.get("server_us_per_connect")),
                issues(measurements, name),
            )
        )
    lines += ["", *md_head("goal", "hub / reference", "ratio", "threshold", "result")]
    for g in goals:
        lines.append(
            md_row(
                g["goal"],
                f"hub / {g['reference']}",
                fmt(g["ratio"], 2),
                f"{g['op']} {g['threshold']}",
                g["result"],
            )
        )
    return common.with_notes(lines, notes)


def evaluate(meds: dict[str, dict[str, float | None]]) -> list[dict[str, Any]]:
    """Every goal and informational ratio with its verdict."""
    rows = []
    for goal in GOALS:
        r = ratio(meds, goal.metric, goal.reference)
        rows.append(
            {
                "goal": goal.name,
                "metric": goal.metric,
                "reference": goal.reference,
                "ratio": r,
                "op": goal.op,
                "threshold": goal.threshold,
                "result": goal.check(r),
            }
        )
    for name, metric, ref in INFO_RATIOS:
        r = ratio(meds, metric, ref)
        rows.append(
            {
                "goal": name,
                "metric": metric,
                "reference": ref,
                "ratio": r,
                "op": "",
                "threshold": "",
                "result": "info",
            }
        )
    return rows


def headroom_notes(
    meds: dict[str, dict[str, float | None]], measurements: Sequence[Measurement]
) -> list[str]:
    """Why the figures can be trusted (or not): generator headroom and any run's problems."""
    notes = []
    bare = meds.get("bare", {}).get("throughput")
    daphne = [meds.get(t, {}).get("throughput") for t in ("hub", "consumer")]
    fastest = max((v for v in daphne if v), default=None)
    client_cpu = [
        m.result["client_cpu_pct"]
        for m in measurements
        if m.result.get("client_cpu_pct") is not None and m.target != "bare"
    ]
    if bare and fastest:
        notes.append(
            f"generator headroom: the same generator drove the bare server at "
            f"{bare / fastest:.1f}x the fastest Daphne target's rate"
            + (
                f"; it used at most {max(client_cpu):.0f} % of a core on Daphne."
                if client_cpu
                else "."
            )
        )
    for m in measurements:
        if m.problems:
            notes.append(
                f"{m.target} {m.scenario} run {m.run}: {'; '.join(m.problems)} (log: {m.log})"
            )
    return notes


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Path]:
    """Command line to :class:`Settings` (``--quick`` sets shorter defaults, flags still win)."""
    p = common.argument_parser(
        __doc__, "1 short run (~1 minute)", f"comma-separated targets ({','.join(TARGETS)})"
    )
    p.add_argument("--scenarios", help="comma-separated scenarios (echo,idle)")
    p.add_argument("-c", "--connections", type=int, help="echo connections (default 50)")
    p.add_argument("-d", "--duration", type=float, help="echo measurement seconds (default 10)")
    p.add_argument("--warmup", type=float, help="echo warm-up seconds (default 2)")
    p.add_argument("--latency-duration", type=float, help="C=1 seconds (default 3; 0 = skip)")
    p.add_argument("-k", "--idle-connections", type=int, help="idle connections (default 2000)")
    p.add_argument("--idle-concurrency", type=int, help="handshakes in flight (default 50)")
    p.add_argument("--connect-cap", type=float, help="stop opening idle connections after (s)")
    p.add_argument("--negotiate", action="store_true", help="hub clients POST /negotiate first")
    p.add_argument("--procs", type=int, help="generator processes (default 1)")
    common.add_client(p)
    args = common.parse(p, argv, RESULTS_DIR / "latest.json")

    values = common.given(
        args,
        QUICK,
        (
            "runs",
            "connections",
            "duration",
            "warmup",
            "latency_duration",
            "idle_connections",
            "idle_concurrency",
            "connect_cap",
            "procs",
            "client",
        ),
    )
    values["negotiate"] = args.negotiate
    if args.only:
        values["targets"] = common.choices(args.only, TARGETS, "--only")
    if args.scenarios:
        values["scenarios"] = common.choices(args.scenarios, SCENARIOS, "--scenarios")
    return Settings(**values), args.out


def plan(settings: Settings) -> Iterator[tuple[int, Target, str]]:
    """Run order: every run visits every target, rotated per run to spread drift and noise."""
    for run, names in common.rotations(settings.targets, settings.runs):
        for name in names:
            for scenario in settings.scenarios:
                yield run, TARGETS[name], scenario


def progress(m: Measurement) -> str:
    """One line per measurement while the benchmark runs."""
    r = m.result
    if m.scenario == "echo":
        figures = (
            f"{fmt(r.get('throughput'))} msgs/s, {fmt(r.get('server_us_per_msg'))} µs/msg, "
            f"p99 {fmt(r.get('p99_ms'), 2)} ms, C=1 p50 {fmt(r.get('c1_p50_ms'), 3)} ms, "
            f"server {fmt(r.get('server_cpu_pct'))} % / generator {fmt(r.get('client_cpu_pct'))} %"
        )
    else:
        figures = (
            f"{fmt(r.get('connections_opened'))} open at {fmt(r.get('connect_rate'))}/s, "
            f"{fmt(r.get('rss_kib_per_conn'), 1)} KiB/conn, "
            f"{fmt(r.get('server_us_per_connect'))} µs/connect"
        )
    return m.progress(f"{m.target:8} {m.scenario:4} ", figures)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plan, print the report, write the JSON. Exit 0 unless the harness itself broke."""
    settings, out = parse_args(argv)
    common.prepare()
    notes: list[str] = []
    if "hub" in settings.targets:
        ok, detail = common.hub_ready()
        if not ok:
            notes.append(f"hub skipped: the bench project does not serve it yet ({detail[-300:]})")
            print(f"hub not available, skipping it:\n{detail}", file=sys.stderr)
            settings = Settings(
                **{**asdict(settings), "targets": tuple(t for t in settings.targets if t != "hub")}
            )
    if not settings.targets:
        print("nothing to run", file=sys.stderr)
        return 1

    env = common.environment()
    measurements = []
    for run, target, scenario in plan(settings):
        m = measure(settings, target, scenario, run)
        measurements.append(m)
        common.print_progress(progress(m), m.server_traceback)

    meds = medians(measurements)
    goals = evaluate(meds)
    notes += headroom_notes(meds, measurements) + common.source_notes(env)
    print(markdown_report(settings, meds, measurements, goals, notes))

    common.write_results(
        out,
        env,
        settings=asdict(settings),
        targets={n: asdict(TARGETS[n]) for n in settings.targets},
        medians=meds,
        goals=goals,
        notes=notes,
        measurements=[asdict(m) | {"problems": m.problems} for m in measurements],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
