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

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "logs"
PYTHON = sys.executable
DJANGO_ENV = {"DJANGO_SETTINGS_MODULE": "bench.benchproject.settings"}
ASGI_APP = "bench.benchproject.asgi:application"


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Target:
    """One server under test: how to start it and which path the generator connects to."""

    name: str
    kind: str  # "daphne" or "bare"
    path: str
    description: str

    def command(self, port: int) -> list[str]:
        """The server's command line for ``port``."""
        if self.kind == "daphne":
            return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), ASGI_APP]
        return [PYTHON, str(BENCH_DIR / "servers" / "bare_websockets.py"), "--port", str(port)]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("hub", "daphne", "/hubs/echo", "signalr_django EchoHub on Daphne"),
        Target("consumer", "daphne", "/ws/consumer", "plain Channels consumer on Daphne"),
        Target("bare", "bare", "/hubs/echo", "bare websockets server (Python ceiling)"),
    )
}
SCENARIOS = ("echo", "idle")


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
    targets: tuple[str, ...] = tuple(TARGETS)
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
        if ratio is None:
            return "n/a"
        ok = ratio >= self.threshold if self.op == ">=" else ratio <= self.threshold
        return "PASS" if ok else "FAIL"


GOALS = (
    Goal("echo throughput", "throughput", "consumer", ">=", 0.9),
    Goal("echo p99 latency", "p99_ms", "consumer", "<=", 1.2),
    Goal("RSS per idle connection", "rss_kib_per_conn", "consumer", "<=", 1.1),
    Goal("connect rate", "connect_rate", "consumer", ">=", 1.0),
)
INFO_RATIOS = (("echo throughput vs bare", "throughput", "bare"),)


# --------------------------------------------------------------------------- server processes


def raise_nofile_limit() -> None:
    """Lift the soft open-files limit; servers and generators inherit it from this process."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    """A TCP port nobody listens on right now (each server gets a new one: no TIME_WAIT clash)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_accepting(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Block until the server accepts TCP connections; fail early if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server did not accept connections within {timeout:.0f} s")


@contextlib.contextmanager
def server_process(target: Target, log_path: Path) -> Iterator[tuple[int, int]]:
    """Start ``target`` on a free port, yield ``(port, pid)``, then stop it (SIGTERM, then kill).

    Daphne runs in the foreground as ``python -m daphne`` so the child's pid *is* the server:
    /proc/<pid> accounts for exactly the process that serves the connections.
    """
    port = free_port()
    env = {**os.environ, **DJANGO_ENV}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            target.command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_accepting(port, proc)
            yield port, proc.pid
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


_ERROR_MARKERS = re.compile(r"Traceback|Exception inside application|\bERROR\b|CRITICAL")


def server_errors(log_path: Path) -> tuple[int, str | None]:
    """Count error markers in a server log and return the first traceback (for the report)."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    hits = _ERROR_MARKERS.findall(text)
    start = text.find("Traceback")
    if start < 0:
        return len(hits), None
    # Keep the line before the traceback: Daphne puts "Exception inside application: ..." there.
    line_start = text.rfind("\n", 0, max(0, start - 1)) + 1
    return len(hits), text[line_start : start + 4000].strip()


def hub_ready() -> tuple[bool, str]:
    """Whether the bench project serves the hub (imports the real ASGI module in a subprocess)."""
    code = "import sys, bench.benchproject.asgi as a; sys.exit(0 if a.HUB_PATTERNS else 3)"
    proc = subprocess.run(
        [PYTHON, "-c", code],
        cwd=ROOT,
        env={**os.environ, **DJANGO_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()[-3000:]


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


def loadgen_command(settings: Settings, scenario: str, url: str, pid: int) -> list[str]:
    """The generator's command line for one scenario."""
    cmd = [PYTHON, str(BENCH_DIR / "loadgen.py"), scenario, "--url", url, "--server-pid", str(pid)]
    cmd += ["--procs", str(settings.procs)]
    if settings.client:
        cmd += ["--client", settings.client]
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
    m = Measurement(target.name, scenario, run)
    log_path = LOG_DIR / f"{target.name}-{scenario}-run{run}.log"
    m.log = str(log_path.relative_to(ROOT))
    budget = (
        settings.warmup + settings.duration + settings.latency_duration + 120
        if scenario == "echo"
        else settings.connect_cap + settings.settle + 180
    )
    try:
        with server_process(target, log_path) as (port, pid):
            url = f"ws://127.0.0.1:{port}{target.path}"
            proc = subprocess.run(
                loadgen_command(settings, scenario, url, pid),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=budget,
            )
            if proc.returncode != 0:
                m.error = f"loadgen exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"
            else:
                m.result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        m.error = f"{type(exc).__name__}: {exc}"
    m.server_error_lines, m.server_traceback = server_errors(log_path)
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
        if not m.result:
            continue
        metrics = ECHO_METRICS if m.scenario == "echo" else IDLE_METRICS
        row = samples.setdefault(m.target, {})
        for key in metrics:
            value = m.result.get(key)
            if value is not None:
                row.setdefault(key, []).append(float(value))
    return {
        target: {k: round(statistics.median(v), 2) for k, v in row.items()}
        for target, row in samples.items()
    }


def ratio(meds: dict[str, dict[str, float | None]], metric: str, ref: str) -> float | None:
    """hub / reference for one metric, or None when either side is missing."""
    hub, other = meds.get("hub", {}).get(metric), meds.get(ref, {}).get(metric)
    if hub is None or not other:
        return None
    return round(hub / other, 3)


# --------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    """A table cell: thousands separators, ``-`` for missing."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


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
        "| target | echo msgs/s | server µs/msg | p50 / p99 ms | C=1 p50 / p99 ms "
        "| RSS/idle conn KiB | connect/s | server µs/connect | issues |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in settings.targets:
        row = meds.get(name, {})
        issues = sum(bool(m.problems) for m in measurements if m.target == name)
        lines.append(
            f"| {name} | {fmt(row.get('throughput'))} | {fmt(row.get('server_us_per_msg'))} "
            f"| {fmt(row.get('p50_ms'), 2)} / {fmt(row.get('p99_ms'), 2)} "
            f"| {fmt(row.get('c1_p50_ms'), 3)} / {fmt(row.get('c1_p99_ms'), 3)} "
            f"| {fmt(row.get('rss_kib_per_conn'), 1)} | {fmt(row.get('connect_rate'))} "
            f"| {fmt(row.get('server_us_per_connect'))} | {issues or ''} |"
        )
    lines += [
        "",
        "| goal | hub / reference | ratio | threshold | result |",
        "|---|---|---|---|---|",
    ]
    for g in goals:
        lines.append(
            f"| {g['goal']} | hub / {g['reference']} | {fmt(g['ratio'], 2)} "
            f"| {g['op']} {g['threshold']} | {g['result']} |"
        )
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


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


def environment() -> dict[str, Any]:
    """Machine and package versions, so a result file says what it measured."""
    versions: dict[str, str | None] = {}
    for dist in ("django", "channels", "daphne", "twisted", "websockets", "picows", "uvloop"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "packages": versions,
        "source": source_state(),
    }


def source_state() -> dict[str, Any]:
    """The commit measured, the package's uncommitted changes and a digest of its sources.

    The package is developed alongside the benchmark, so a result file must say which
    state of it produced the figures. Every measurement starts a fresh server that imports
    the package as it is on disk at that moment; the digest, read again at the end, shows
    whether the package changed while the benchmark ran (see :func:`source_notes`).
    """

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    changed = git("status", "--porcelain", "--", "signalr_django")
    digest = hashlib.sha256()
    for path in sorted((ROOT / "signalr_django").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return {
        "commit": git("rev-parse", "HEAD"),
        "package_changes": None if changed is None else changed.splitlines(),
        "package_sha256": digest.hexdigest(),
    }


def source_notes(env: dict[str, Any]) -> list[str]:
    """Record the package's state at the end in ``env``; a note when it differs from the start.

    Servers started after the change ran different code from those started before it, so
    figures (and ratios) of such a run mix two versions of the package.
    """
    start, end = env.get("source", {}), source_state()
    env["source_end"] = end
    if start.get("package_sha256") == end["package_sha256"]:
        return []
    return [
        "the package changed on disk while the benchmark ran (commit "
        f"{str(start.get('commit'))[:10]} -> {str(end['commit'])[:10]}): measurements started "
        "after the change ran other code; rerun on a quiet, frozen tree before comparing."
    ]


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Path]:
    """Command line to :class:`Settings` (``--quick`` sets shorter defaults, flags still win)."""
    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="1 short run (~1 minute)")
    p.add_argument("--runs", type=int, help="repetitions, interleaved (default 3)")
    p.add_argument("--only", help=f"comma-separated targets ({','.join(TARGETS)})")
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
    p.add_argument("--client", choices=["picows", "websockets"], help="generator WebSocket lib")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    args = p.parse_args(argv)

    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    for key in (
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
    ):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    values["negotiate"] = args.negotiate
    if args.only:
        values["targets"] = _choices(args.only, TARGETS, "--only")
    if args.scenarios:
        values["scenarios"] = _choices(args.scenarios, SCENARIOS, "--scenarios")
    return Settings(**values), args.out


def _choices(text: str, allowed: Sequence[str] | dict[str, Any], flag: str) -> tuple[str, ...]:
    """Validate a comma-separated selection, keeping the canonical order."""
    picked = {s.strip() for s in text.split(",") if s.strip()}
    unknown = picked - set(allowed)
    if unknown:
        raise SystemExit(f"{flag}: unknown {', '.join(sorted(unknown))}; pick from {list(allowed)}")
    return tuple(a for a in allowed if a in picked)


def plan(settings: Settings) -> Iterator[tuple[int, Target, str]]:
    """Run order: every run visits every target, rotated per run to spread drift and noise."""
    names = list(settings.targets)
    for run in range(1, settings.runs + 1):
        shift = (run - 1) % len(names)
        for name in names[shift:] + names[:shift]:
            for scenario in settings.scenarios:
                yield run, TARGETS[name], scenario


def progress(m: Measurement) -> str:
    """One line per measurement while the benchmark runs."""
    r = m.result
    if m.error:
        head = f"FAILED {m.problems[0][:300]}"
    elif m.scenario == "echo":
        head = (
            f"{fmt(r.get('throughput'))} msgs/s, {fmt(r.get('server_us_per_msg'))} µs/msg, "
            f"p99 {fmt(r.get('p99_ms'), 2)} ms, C=1 p50 {fmt(r.get('c1_p50_ms'), 3)} ms, "
            f"server {fmt(r.get('server_cpu_pct'))} % / generator {fmt(r.get('client_cpu_pct'))} %"
        )
    else:
        head = (
            f"{fmt(r.get('connections_opened'))} open at {fmt(r.get('connect_rate'))}/s, "
            f"{fmt(r.get('rss_kib_per_conn'), 1)} KiB/conn, "
            f"{fmt(r.get('server_us_per_connect'))} µs/connect"
        )
    extra = f"  [{'; '.join(m.problems)}]" if m.problems and not m.error else ""
    return f"[run {m.run}] {m.target:8} {m.scenario:4}  {head}{extra}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plan, print the report, write the JSON. Exit 0 unless the harness itself broke."""
    settings, out = parse_args(argv)
    raise_nofile_limit()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    if "hub" in settings.targets:
        ok, detail = hub_ready()
        if not ok:
            notes.append(f"hub skipped: the bench project does not serve it yet ({detail[-300:]})")
            print(f"hub not available, skipping it:\n{detail}", file=sys.stderr)
            settings = Settings(
                **{**asdict(settings), "targets": tuple(t for t in settings.targets if t != "hub")}
            )
    if not settings.targets:
        print("nothing to run", file=sys.stderr)
        return 1

    env = environment()
    measurements = []
    for run, target, scenario in plan(settings):
        m = measure(settings, target, scenario, run)
        measurements.append(m)
        print(progress(m), file=sys.stderr, flush=True)
        if m.server_traceback:
            print(textwrap.indent(m.server_traceback[:3000], "    | "), file=sys.stderr)

    meds = medians(measurements)
    goals = evaluate(meds)
    notes += headroom_notes(meds, measurements) + source_notes(env)
    print(markdown_report(settings, meds, measurements, goals, notes))

    env["loadavg_end"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "environment": env,
        "settings": asdict(settings),
        "targets": {n: asdict(TARGETS[n]) for n in settings.targets},
        "medians": meds,
        "goals": goals,
        "notes": notes,
        "measurements": [asdict(m) | {"problems": m.problems} for m in measurements],
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
