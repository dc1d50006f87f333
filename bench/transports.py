"""Echo over the three SignalR transports: what Server-Sent Events and long polling cost.

    python bench/transports.py            # 3 interleaved runs: ~2-3 minutes on 2 cores
    python bench/transports.py --quick    # 1 short run: under a minute

The package serves WebSockets, Server-Sent Events and long polling from one hub. Browsers
fall back to the HTTP transports behind proxies that refuse WebSockets, and each of them
turns one invocation into HTTP requests (a POST out; a poll, or an event on an open stream,
back), so their price per invocation decides how many such clients a server can take. This
runs the echo scenario of ``run.py`` against the same ``EchoHub`` on Daphne (``hubs/echo``,
the bench settings, Daphne's default options) once per transport and divides every figure by
the WebSocket one measured in the same run.

Each transport of each run gets a freshly started server, and the transport order rotates
per run, as in ``run.py``. Prints a Markdown table of medians and one of ratios against
WebSockets, and writes everything to ``bench/results/transports.json``.

With ``BENCH_BASELINE=/path/to/checkout`` (``git worktree add /tmp/base HEAD~1``) every
transport is also measured against the hub of that checkout, next to the current one in
the same run (which of the two goes first alternates per run), and a third table divides
each current figure by the baseline's.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench import run as harness
from bench.common import LOG_DIR, fmt, md_head, md_row, pair
from bench.loadgen import LONG_POLLING, SSE, TRANSPORTS, WEBSOCKETS
from bench.run import Measurement

LABELS = {WEBSOCKETS: "WebSockets", SSE: "Server-Sent Events", LONG_POLLING: "long polling"}
REFERENCE = WEBSOCKETS
BASE = "-base"  # suffix of a measurement of the BENCH_BASELINE checkout
RATIO_METRICS = ("throughput", "server_us_per_msg", "p50_ms", "p99_ms", "c1_p50_ms", "c1_p99_ms")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a run, recorded in the JSON so results can be compared."""

    runs: int = 3
    connections: int = 50
    lp_connections: int | None = None
    duration: float = 10.0
    warmup: float = 2.0
    latency_duration: float = 3.0
    procs: int = 1
    client: str | None = None
    access_log: bool = True
    transports: tuple[str, ...] = TRANSPORTS

    def connections_for(self, transport: str) -> int:
        """C for ``transport``: long polling may be given fewer (``--lp-connections``)."""
        if transport == LONG_POLLING and self.lp_connections:
            return self.lp_connections
        return self.connections


QUICK = {"runs": 1, "duration": 3.0, "warmup": 1.0, "latency_duration": 1.5}


@dataclass(frozen=True)
class HubTarget(harness.Target):
    """The echo hub on Daphne, optionally with extra Daphne options.

    Daphne writes an access-log line per HTTP request by default; for long polling that is
    two lines per invocation, for WebSockets none. ``--no-access-log`` (Daphne's ``-v 0``)
    shows how much of the HTTP transports' cost that logging is.
    """

    extra_args: tuple[str, ...] = ()

    def command(self, port: int) -> list[str]:
        """Daphne's command line with ``extra_args`` before the application."""
        return common.daphne_command(port, *self.extra_args)


def hub_target(settings: Settings, base: bool = False) -> HubTarget:
    """The run's server: ``run.py``'s ``hub`` target, with or without the access log.

    ``base``: the same server started in the BENCH_BASELINE checkout (a ``-base`` target).
    """
    hub = harness.TARGETS["hub"]
    extra = () if settings.access_log else ("-v", "0")
    name = hub.name + BASE if base else hub.name
    return HubTarget(name, hub.kind, hub.path, hub.description, extra)


def transport_of(name: str) -> str:
    """The transport a measurement name stands for (``sse-base`` -> ``sse``)."""
    return name.removesuffix(BASE)


def label(name: str) -> str:
    """A measurement name as the tables print it."""
    return LABELS[transport_of(name)] + (" (baseline)" if name.endswith(BASE) else "")


def server_command(settings: Settings) -> list[str]:
    """The server's command line as recorded in the JSON (``PORT`` for the per-run port)."""
    cmd = ["python", *hub_target(settings).command(0)[1:]]
    cmd[cmd.index("-p") + 1] = "PORT"
    return cmd


# --------------------------------------------------------------------------- one measurement


def loadgen_command(settings: Settings, transport: str, url: str, pid: int) -> list[str]:
    """The generator's echo command line for one transport.

    Every transport negotiates (the HTTP ones must), so the three connect the same way; the
    measured window starts after all connections are open either way.
    """
    cmd = common.loadgen_command("echo", url, pid, client=settings.client)
    cmd += ["--transport", transport, "--negotiate", "--procs", str(settings.procs)]
    cmd += ["-c", str(settings.connections_for(transport)), "-d", str(settings.duration)]
    cmd += ["--warmup", str(settings.warmup), "--latency-duration", str(settings.latency_duration)]
    return cmd


def measure(settings: Settings, name: str, run: int) -> Measurement:
    """Start a fresh hub server, run the echo over ``name``'s transport, stop it, read its log.

    A ``-base`` name runs the server of the BENCH_BASELINE checkout.
    """
    transport = transport_of(name)
    return harness.run_measurement(
        Measurement(name, "echo", run),
        hub_target(settings, base=name.endswith(BASE)),
        LOG_DIR / f"transport-{name}-run{run}.log",
        lambda url, pid: loadgen_command(settings, transport, url, pid),
        settings.warmup + settings.duration + settings.latency_duration + 120,
    )


# --------------------------------------------------------------------------- aggregation


def ratios(meds: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float | None]]:
    """Each transport's medians divided by the WebSocket medians of the same checkout."""
    out = {}
    for name, row in meds.items():
        ref = meds.get(REFERENCE + BASE if name.endswith(BASE) else REFERENCE, {})
        out[name] = {
            metric: common.ratio(row.get(metric), ref.get(metric)) for metric in RATIO_METRICS
        }
    return out


def versus_baseline(
    meds: dict[str, dict[str, float | None]],
) -> dict[str, dict[str, float | None]]:
    """Each transport's medians divided by the baseline checkout's (empty without one)."""
    return {
        name: {
            metric: common.ratio(row.get(metric), meds[name + BASE].get(metric))
            for metric in RATIO_METRICS
        }
        for name, row in meds.items()
        if name + BASE in meds
    }


# --------------------------------------------------------------------------- report


def markdown_report(
    settings: Settings,
    meds: dict[str, dict[str, float | None]],
    rel: dict[str, dict[str, float | None]],
    measurements: Sequence[Measurement],
    notes: list[str],
    vs_base: dict[str, dict[str, float | None]] | None = None,
) -> str:
    """The human-readable summary printed at the end of a run."""
    runs = {m.run for m in measurements}
    lines = [
        f"## Echo over SignalR transports: medians of {len(runs)} run(s)",
        "",
        f"`EchoHub` at `/hubs/echo` on Daphne, {settings.duration:g} s after "
        f"{settings.warmup:g} s warm-up, 64 B payload, one invocation in flight per "
        f"connection; access log {'on (Daphne default)' if settings.access_log else 'off'}.",
        "",
        *md_head(
            "transport",
            "C",
            "msgs/s",
            *harness.ECHO_COLUMNS,
            "CPU % server / generator",
            "issues",
        ),
    ]
    for name in names(settings):
        row = meds.get(name, {})
        lines.append(
            md_row(
                label(name),
                settings.connections_for(transport_of(name)),
                *harness.echo_cells(row),
                pair(row.get("server_cpu_pct"), row.get("client_cpu_pct")),
                harness.issues(measurements, name),
            )
        )
    lines += [
        "",
        f"Ratios against {LABELS[REFERENCE]} (transport / WebSockets):",
        "",
        *md_head("transport", "msgs/s", "server µs/msg", "p50", "p99", "C=1 p50", "C=1 p99"),
    ]
    for name in names(settings):
        if transport_of(name) == REFERENCE:
            continue
        r = rel.get(name, {})
        lines.append(md_row(label(name), *(fmt(r.get(k), 2) for k in RATIO_METRICS)))
    if vs_base:
        lines += [
            "",
            "Against the BENCH_BASELINE checkout (current / baseline, same runs):",
            "",
            *md_head("transport", "msgs/s", "server µs/msg", "p50", "p99", "C=1 p50", "C=1 p99"),
        ]
        for name in settings.transports:
            r = vs_base.get(name, {})
            lines.append(md_row(LABELS[name], *(fmt(r.get(k), 2) for k in RATIO_METRICS)))
    return common.with_notes(lines, notes)


def report_notes(settings: Settings, measurements: Sequence[Measurement]) -> list[str]:
    """What qualifies the figures: unequal C, a busy generator, and every run's problems."""
    notes = []
    sizes = {settings.connections_for(t) for t in settings.transports}
    if len(sizes) > 1:
        notes.append(
            "long polling ran with a different C: its msgs/s and p50/p99 ratios compare unequal "
            "loads; µs/msg and the C=1 columns still compare."
        )
    busy = common.busiest_generator((m.result, (m.target, m.run)) for m in measurements)
    if busy:
        top, (name, run) = busy
        notes.append(
            f"generator: at most {top:.0f} % of a core ({label(name)}, run {run}); "
            "near 100 % its msgs/s would be a lower bound (µs/msg is unaffected)."
        )
    for m in measurements:
        if m.problems:
            notes.append(f"{m.target} run {m.run}: {'; '.join(m.problems)} (log: {m.log})")
    return notes


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Path]:
    """Command line to :class:`Settings` (``--quick`` sets shorter defaults, flags still win)."""
    p = common.argument_parser(
        __doc__,
        "1 short run (under a minute)",
        f"comma-separated transports ({','.join(TRANSPORTS)})",
    )
    p.add_argument("-c", "--connections", type=int, help="connections (default 50)")
    p.add_argument("--lp-connections", type=int, help="connections for long polling (default -c)")
    p.add_argument("-d", "--duration", type=float, help="measurement seconds (default 10)")
    p.add_argument("--warmup", type=float, help="warm-up seconds (default 2)")
    p.add_argument("--latency-duration", type=float, help="C=1 seconds (default 3; 0 = skip)")
    p.add_argument("--procs", type=int, help="generator processes (default 1)")
    common.add_client(p, "WebSocket generator lib")
    p.add_argument(
        "--no-access-log", action="store_true", help="run Daphne with -v 0 (no access log)"
    )
    args = common.parse(p, argv, common.RESULTS_DIR / "transports.json")

    values = common.given(
        args,
        QUICK,
        (
            "runs",
            "connections",
            "lp_connections",
            "duration",
            "warmup",
            "latency_duration",
            "procs",
            "client",
        ),
    )
    values["access_log"] = not args.no_access_log
    if args.only:
        values["transports"] = common.choices(args.only, TRANSPORTS, "--only")
    return Settings(**values), args.out


def names(settings: Settings) -> list[str]:
    """The measured names: the transports, each followed by its baseline twin if there is one."""
    base = common.baseline_root() is not None
    return [n for t in settings.transports for n in ((t, t + BASE) if base else (t,))]


def baseline_state() -> dict[str, str] | None:
    """The BENCH_BASELINE checkout and its commit, for the JSON (None without one)."""
    root = common.baseline_root()
    if root is None:
        return None
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {"path": str(root), "commit": commit}


def plan(settings: Settings) -> Iterator[tuple[int, str]]:
    """Run order: every run visits every transport, rotated per run to spread drift.

    With a baseline each transport's two servers are measured back to back, the current
    one first in odd runs and the baseline first in even ones.
    """
    base = common.baseline_root() is not None
    for run, transports in common.rotations(settings.transports, settings.runs):
        for transport in transports:
            pair = [transport, transport + BASE] if base else [transport]
            yield from ((run, name) for name in (pair if run % 2 else pair[::-1]))


def progress(m: Measurement) -> str:
    """One line per measurement while the benchmark runs."""
    r = m.result
    return m.progress(
        f"{m.target:16}",
        f"C={fmt(r.get('connections'))}: {fmt(r.get('throughput'))} msgs/s, "
        f"{fmt(r.get('server_us_per_msg'))} µs/msg, p50/p99 {fmt(r.get('p50_ms'), 2)} / "
        f"{fmt(r.get('p99_ms'), 2)} ms, C=1 p50 {fmt(r.get('c1_p50_ms'), 3)} ms, "
        f"server {fmt(r.get('server_cpu_pct'))} % / generator {fmt(r.get('client_cpu_pct'))} %",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plan, print the report, write the JSON. Exit 0 unless the harness itself broke."""
    settings, out = parse_args(argv)
    common.prepare()
    ok, detail = common.hub_ready()
    if not ok:
        print(f"the bench project does not serve the hub:\n{detail}", file=sys.stderr)
        return 1
    if settings.transports and REFERENCE not in settings.transports:
        print("note: without websockets there are no ratios", file=sys.stderr)

    env = common.environment(extra_packages=("aiohttp",))
    measurements = []
    for run, transport in plan(settings):
        m = measure(settings, transport, run)
        measurements.append(m)
        common.print_progress(progress(m), m.server_traceback)

    meds = harness.medians(measurements)
    rel = ratios(meds)
    vs_base = versus_baseline(meds)
    notes = report_notes(settings, measurements) + common.source_notes(env)
    print(markdown_report(settings, meds, rel, measurements, notes, vs_base))

    common.write_results(
        out,
        env,
        settings=asdict(settings),
        server_command=server_command(settings),
        reference=REFERENCE,
        medians=meds,
        ratios_vs_websockets=rel,
        baseline=baseline_state(),
        ratios_vs_baseline=vs_base,
        notes=notes,
        measurements=[asdict(m) | {"problems": m.problems} for m in measurements],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
