"""What the benchmark runners, the load generator and the bare servers share.

Paths and command lines, server processes (start on a free port, wait until they accept,
stop), the fd limit and the event loop, server logs, the record of the package's state,
medians and ratios, the Markdown and JSON output, and the command-line plumbing of
``run.py``, ``broadcast.py`` and ``transports.py``. Standard library only: the bare servers
and the generator import it too.
"""

from __future__ import annotations

import argparse
import asyncio
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
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "logs"
PYTHON = sys.executable
DJANGO_ENV = {"DJANGO_SETTINGS_MODULE": "bench.benchproject.settings"}
ASGI_APP = "bench.benchproject.asgi:application"

_T = TypeVar("_T")
_K = TypeVar("_K")


# --------------------------------------------------------------------------- this process


def raise_nofile_limit() -> int:
    """Lift the soft open-files limit to the hard limit: thousands of sockets need it.

    Servers and generators started from a runner inherit the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on uvloop when it is installed, else on the stock asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# --------------------------------------------------------------------------- server processes


def daphne_command(port: int, *options: str) -> list[str]:
    """Daphne in the foreground (``python -m daphne``) serving the bench project on ``port``.

    In the foreground the child's pid *is* the server: /proc/<pid> accounts for exactly the
    process that serves the connections. ``options`` go before the application.
    """
    return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *options, ASGI_APP]


def uvicorn_command(port: int, *options: str) -> list[str]:
    """uvicorn in the foreground serving the bench project on ``port``: uvloop, httptools and
    websockets-sansio (what uvicorn[standard] picks), no access log (Daphne logs none)."""
    return [
        PYTHON,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--ws",
        "websockets-sansio",
        *options,
        ASGI_APP,
    ]


def django_env() -> dict[str, str]:
    """This process's environment with the bench project's settings module."""
    return {**os.environ, **DJANGO_ENV}


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


def stop(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """SIGTERM to every process still running, then kill those not gone within ``timeout``."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def servers(
    command: Callable[[int], list[str]],
    logs: Sequence[Path],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[list[tuple[int, int]]]:
    """Start one ``command(port)`` per log, each on a free port; yield ``[(port, pid), ...]``.

    All start at once (Daphne takes seconds to import Django), each writing stdout and stderr
    to its log; the block runs once every one accepts connections, and afterwards all are
    stopped (:func:`stop`). ``env`` defaults to this process's environment.
    """
    procs: list[tuple[int, subprocess.Popen[bytes]]] = []
    with contextlib.ExitStack() as stack:
        try:
            for log_path in logs:
                port = free_port()
                log = stack.enter_context(log_path.open("wb"))
                proc = subprocess.Popen(
                    command(port), cwd=cwd or ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
                procs.append((port, proc))
            for port, proc in procs:
                wait_accepting(port, proc)
            yield [(port, proc.pid) for port, proc in procs]
        finally:
            stop([proc for _port, proc in procs])


def baseline_root() -> Path | None:
    """A checkout of another commit (``BENCH_BASELINE``) whose package is measured side by side.

    Its servers start with that checkout as their working directory, so ``python -m daphne``
    imports its ``signalr_django`` and bench project; every ``*-base`` target runs there.
    Make one with ``git worktree add /tmp/base HEAD~1``.
    """
    path = os.environ.get("BENCH_BASELINE")
    if not path:
        return None
    root = Path(path).resolve()
    if not (root / "signalr_django").is_dir():
        raise SystemExit(f"BENCH_BASELINE={path} is not a checkout of this project")
    return root


def loadgen_command(
    scenario: str, url: str, pid: int, procs: int | None = None, client: str | None = None
) -> list[str]:
    """The start of the generator's command line: scenario, server URL and pid for sampling."""
    cmd = [PYTHON, str(BENCH_DIR / "loadgen.py"), scenario, "--url", url, "--server-pid", str(pid)]
    if procs is not None:
        cmd += ["--procs", str(procs)]
    if client:
        cmd += ["--client", client]
    return cmd


def hub_ready() -> tuple[bool, str]:
    """Whether the bench project serves the hub (imports the real ASGI module in a subprocess)."""
    code = "import sys, bench.benchproject.asgi as a; sys.exit(0 if a.HUB_PATTERNS else 3)"
    proc = subprocess.run(
        [PYTHON, "-c", code],
        cwd=ROOT,
        env=django_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()[-3000:]


# --------------------------------------------------------------------------- server logs


ERROR_MARKERS = re.compile(r"Traceback|Exception inside application|\bERROR\b|CRITICAL")
_CHAINED = ("During handling of the above exception", "The above exception was the direct")


def read_log(path: Path) -> str:
    """A server log's text ("" when it was never written)."""
    return path.read_text(errors="replace") if path.exists() else ""


def log_errors(text: str) -> tuple[int, Counter[str], str | None]:
    """Error lines, the exceptions that ended tracebacks, and the first traceback.

    Each traceback's exception line (``redis.exceptions.MaxConnectionsError: Too many
    connections``) is what tells failures apart; of a chain (``During handling of the above
    exception ...``) only the last one counts, so one failure is one exception. The first
    traceback keeps the line before it: Daphne puts "Exception inside application: ..." there.
    """
    hits = len(ERROR_MARKERS.findall(text))
    kinds: Counter[str] = Counter()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("Traceback"):
            i += 1
            continue
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or lines[j][0] in " \t"):
            j += 1
        if j >= len(lines):
            break
        k = j + 1
        while k < len(lines) and not lines[k].strip():
            k += 1
        if k >= len(lines) or not lines[k].startswith(_CHAINED):
            kinds[lines[j].strip()[:160]] += 1
        i = j + 1
    start = text.find("Traceback")
    first = None
    if start >= 0:
        line_start = text.rfind("\n", 0, max(0, start - 1)) + 1
        first = text[line_start : start + 4000].strip()
    return hits, kinds, first


# --------------------------------------------------------------------------- environment


BASE_PACKAGES = ("django", "channels", "daphne", "twisted", "websockets", "picows", "uvloop")


def package_version(dist: str) -> str | None:
    """An installed distribution's version, for the record (None when not installed)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(extra_packages: Iterable[str] = ()) -> dict[str, Any]:
    """Machine and package versions, so a result file says what it measured."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "packages": {d: package_version(d) for d in (*BASE_PACKAGES, *extra_packages)},
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


# --------------------------------------------------------------------------- command line


def argument_parser(doc: str | None, quick: str, only: str) -> argparse.ArgumentParser:
    """A runner's parser (the first paragraph of ``doc`` as its description) with the flags
    every runner starts with: ``--quick`` (help ``quick``), ``--runs`` and ``--only`` (help
    ``only``). :func:`add_client` and :func:`parse` add the ones they end with."""
    p = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--runs", type=int, help="repetitions, interleaved (default 3)")
    p.add_argument("--only", help=only)
    return p


def add_client(p: argparse.ArgumentParser, text: str = "generator WebSocket lib") -> None:
    """``--client``: the generator's WebSocket library."""
    p.add_argument("--client", choices=["picows", "websockets"], help=text)


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None, out: Path) -> argparse.Namespace:
    """Add ``--out`` (the result file, default ``out``), then parse ``argv``."""
    p.add_argument("--out", type=Path, default=out)
    return p.parse_args(argv)


def given(
    args: argparse.Namespace, quick: Mapping[str, Any], keys: Iterable[str]
) -> dict[str, Any]:
    """Settings values: ``quick``'s with ``--quick``, overridden by every flag given."""
    values: dict[str, Any] = dict(quick) if args.quick else {}
    for key in keys:
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return values


def choices(text: str, allowed: Sequence[str] | Mapping[str, Any], flag: str) -> tuple[str, ...]:
    """Validate a comma-separated selection, keeping the canonical order."""
    picked = {s.strip() for s in text.split(",") if s.strip()}
    unknown = picked - set(allowed)
    if unknown:
        raise SystemExit(f"{flag}: unknown {', '.join(sorted(unknown))}; pick from {list(allowed)}")
    return tuple(a for a in allowed if a in picked)


def rotations(names: Sequence[str], runs: int) -> Iterator[tuple[int, list[str]]]:
    """Run order: each run (from 1) with every name, rotated per run to spread drift and noise."""
    order = list(names)
    for run in range(1, runs + 1):
        shift = (run - 1) % len(order)
        yield run, order[shift:] + order[:shift]


def prepare() -> None:
    """Before the first measurement: lift the fd limit, make the log folder."""
    raise_nofile_limit()
    LOG_DIR.mkdir(parents=True, exist_ok=True)


def print_progress(line: str, traceback: str | None = None) -> None:
    """A measurement's progress line on stderr, with a server traceback indented under it."""
    print(line, file=sys.stderr, flush=True)
    if traceback:
        print(textwrap.indent(traceback[:3000], "    | "), file=sys.stderr)


# --------------------------------------------------------------------------- statistics


def add_samples(
    row: dict[str, list[float]], result: Mapping[str, Any], keys: Iterable[str]
) -> None:
    """Append ``result``'s value of every key in ``keys`` that it has to ``row``."""
    for key in keys:
        value = result.get(key)
        if value is not None:
            row.setdefault(key, []).append(float(value))


def median_row(row: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The median of every metric's samples, rounded for the report."""
    return {k: round(statistics.median(v), 2) for k, v in row.items()}


def ratio(value: float | None, reference: float | None, digits: int = 3) -> float | None:
    """value / reference, None when either is missing (or the reference is 0)."""
    if value is None or not reference:
        return None
    return round(value / reference, digits)


def busiest_generator(
    results: Iterable[tuple[Mapping[str, Any], _K]],
) -> tuple[float, _K] | None:
    """The highest ``client_cpu_pct`` among ``(result, key)`` pairs with its key, or None."""
    found = [
        (r["client_cpu_pct"], key) for r, key in results if r.get("client_cpu_pct") is not None
    ]
    return max(found) if found else None


def verdict(value: float | None, op: str, threshold: float) -> str:
    """PASS when ``value op threshold`` holds (``op`` is ">=" or "<="), else FAIL; n/a for None."""
    if value is None:
        return "n/a"
    ok = value >= threshold if op == ">=" else value <= threshold
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    """A table cell: thousands separators, ``-`` for missing."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def pair(a: float | None, b: float | None, digits: int = 0) -> str:
    """Two figures in one cell: ``a / b``."""
    return f"{fmt(a, digits)} / {fmt(b, digits)}"


def md_row(*cells: object) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def md_head(*columns: str) -> list[str]:
    """A Markdown table's header row and separator."""
    return [md_row(*columns), "|" + "---|" * len(columns)]


def with_notes(lines: list[str], notes: Sequence[str]) -> str:
    """The report's lines, then the notes as a list, as one text."""
    if notes:
        lines = [*lines, "", *(f"- {n}" for n in notes)]
    return "\n".join(lines)


def write_results(out: Path, env: dict[str, Any], **sections: Any) -> None:
    """Write ``{"environment": env, **sections}`` to ``out`` as JSON and say so on stderr.

    ``env`` gets the load average at the end first.
    """
    env["loadavg_end"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": env, **sections}, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", file=sys.stderr)
