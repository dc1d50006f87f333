"""Start real servers (Daphne, uvicorn, gunicorn, redis-server) as subprocesses for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def raise_file_limit() -> None:
    """Allow as many open files as the hard limit permits (thousands of sockets)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until something accepts connections on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@dataclass
class Server:
    """A running server process."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        """Base HTTP URL."""
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> str:
        """GET a path and return the body."""
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            body: bytes = response.read()
            return body.decode()

    def output(self) -> str:
        """What the server logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Terminate the process."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextlib.contextmanager
def daphne(
    asgi: str,
    settings: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    name: str = "daphne",
    port: int | None = None,
) -> Iterator[Server]:
    """Run `daphne asgi` with `DJANGO_SETTINGS_MODULE=settings` on `port` (default: free)."""
    port = port or free_port()
    # A listen backlog large enough for connection bursts (Twisted's default is 50).
    endpoint = f"tcp:port={port}:interface=127.0.0.1:backlog=4096"
    with _serve(["daphne", "-e", endpoint, asgi], settings, log_dir, name, port, env) as server:
        yield server


@contextlib.contextmanager
def uvicorn(
    asgi: str,
    settings: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    name: str = "uvicorn",
    port: int | None = None,
    ws: str = "websockets-sansio",
    extra: tuple[str, ...] = (),
) -> Iterator[Server]:
    """Run `uvicorn asgi` with `DJANGO_SETTINGS_MODULE=settings` on `port` (default: free).

    `ws` names uvicorn's WebSocket implementation explicitly: `websockets-sansio` is what
    `uvicorn[standard]` picks (`--ws auto` with `websockets` installed), `wsproto` the other
    maintained one.
    """
    port = port or free_port()
    command = [
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backlog",
        "4096",
        "--ws",
        ws,
        *extra,
        asgi,
    ]
    with _serve(command, settings, log_dir, name, port, env) as server:
        yield server


@contextlib.contextmanager
def _serve(
    command: list[str],
    settings: str,
    log_dir: Path,
    name: str,
    port: int,
    env: dict[str, str] | None,
) -> Iterator[Server]:
    """Start `python -m <command>` and wait until it listens on `port`."""
    log = log_dir / f"{name}-{port}.log"
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, "PYTHONUNBUFFERED": "1"}
    full_env.update(env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_file_limit,
        )
    server = Server(proc, port, log)
    try:
        wait_for_port(port, proc=proc)
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def gunicorn(
    wsgi: str,
    settings: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """Run gunicorn (sync workers) serving `wsgi` on `port` (default: a free one)."""
    port = port or free_port()
    command = ["gunicorn", "-b", f"127.0.0.1:{port}", "-w", "2", wsgi]
    with _serve(command, settings, log_dir, "gunicorn", port, env) as server:
        yield server
