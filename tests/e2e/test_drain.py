"""Rolling restarts: a worker that gets SIGTERM hands its clients over and makes way.

On SIGTERM a worker closes its listening socket, withdraws its load report, refuses what
still reaches it, tells its clients to reconnect and exits once they are gone. Tested on
the split deployment (gunicorn, two Daphne workers, Redis) with official clients under
load, a replacement binding the same port at once; with a listening socket shared with the
replacement (`daphne --fd`); and on uvicorn.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import redis_url
from tests.servers import (
    ROOT,
    Server,
    daphne,
    free_port,
    gunicorn,
    raise_file_limit,
    uvicorn,
)

from .conftest import JS_DIR, node_available

pytestmark = pytest.mark.e2e

ASGI = "tests.asgi:application"
SETTINGS = "tests.settings_redis"


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    """A Redis server for this module."""
    with redis_url() as url:
        yield url


class Deployment:
    """Two Daphne workers and gunicorn on one Redis; workers can be replaced on their port."""

    def __init__(self, stack: contextlib.ExitStack, redis: str, artifacts: Path, db: str) -> None:
        self.stack = stack
        self.artifacts = artifacts
        self.ports = [free_port(), free_port()]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.env = {
            "SIGNALR_TEST_DB": db,
            "REDIS_URL": redis,
            "SIGNALR_TEST_LAYER": "pubsub",
            "SIGNALR_TEST_WORKERS": ",".join(self.urls),
            "SIGNALR_TEST_LOG_LEVEL": "INFO",
        }
        self.generation = 0
        self.workers = [self._start(0), self._start(1)]
        self.web = stack.enter_context(
            gunicorn("tests.wsgi:application", SETTINGS, artifacts, self.env)
        )

    def _start(self, index: int) -> Server:
        self.generation += 1
        env = {**self.env, "SIGNALR_WORKER_URL": self.urls[index]}
        name = f"worker{index}-{self.generation}"
        server = self.stack.enter_context(
            daphne(ASGI, SETTINGS, self.artifacts, env, name, self.ports[index])
        )
        wait_until(lambda: "Listening on TCP address" in server.output(), 60, server.output)
        return server

    def restart(self, index: int) -> tuple[Server, int]:
        """SIGTERM worker `index`, start its replacement on the same port at once.

        Returns the old server and its exit code.
        """
        old = self.workers[index]
        old.proc.send_signal(signal.SIGTERM)
        self.workers[index] = self._start(index)
        return old, old.proc.wait(60)


def wait_until(condition: Callable[[], bool], timeout: float, details: Callable[[], Any]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met after {timeout} s: {details()}")
        time.sleep(0.05)


class NodeLoad:
    """rolling.mjs in the background: its status lines are followed, "stop" ends it."""

    def __init__(self, web: str, workers: list[str], clients: int) -> None:
        node_available()
        self.proc = subprocess.Popen(
            ["node", str(JS_DIR / "rolling.mjs"), web, *workers],
            cwd=ROOT,
            env={**os.environ, "CLIENTS": str(clients)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[Any] = queue.Queue()
        self.status: dict[str, int] = {"reconnecting": 0, "reconnects": 0}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.strip():
                continue
            message = json.loads(line)
            if "status" in message:
                self.status = message["status"]
            else:
                self.lines.put(message)
        self.lines.put(None)

    def line(self, timeout: float) -> Any:
        try:
            message = self.lines.get(timeout=timeout)
        except queue.Empty:
            message = None
        if message is None:
            self.proc.kill()
            _, stderr = self.proc.communicate(timeout=10)
            pytest.fail(f"rolling.mjs printed nothing more:\n{stderr[-4000:]}")
        return message

    def settled(self, since: int, timeout: float = 60) -> None:
        """Wait until clients moved since `since` reconnects and none is reconnecting."""

        def done() -> bool:
            return self.status["reconnecting"] == 0 and self.status["reconnects"] > since

        wait_until(done, timeout, lambda: self.status)
        time.sleep(1)  # a Close still on its way would show up as reconnecting here
        wait_until(done, timeout, lambda: self.status)

    def finish(self) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        return self.line(90)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


ACCEPTED = re.compile(r'"WSCONNECT |negotiate[^"]*" 200 ')


def after_drain(log: str) -> str:
    """What a worker logged from the start of its drain."""
    start = log.find("Draining: new connections are refused")
    assert start >= 0, log[-3000:]
    return log[start:]


def test_rolling_restart_drops_nobody(redis: str, artifacts: Path, test_db: str) -> None:
    """Restart one worker, then the other, under load from official clients."""
    with contextlib.ExitStack() as stack:
        deployment = Deployment(stack, redis, artifacts, test_db)
        load = NodeLoad(deployment.web.url, deployment.urls, clients=8)
        stack.callback(load.kill)
        try:
            assert load.line(90) == {"ready": 8}
            drained = []
            for index in (0, 1):
                before = load.status["reconnects"]
                time.sleep(1)  # invocations and broadcasts flow on every client
                old, code = deployment.restart(index)
                drained.append(old)
                assert code == 0, old.output()[-3000:]
                load.settled(before)
            out = load.finish()
        except BaseException:
            for server in [*deployment.workers, deployment.web]:
                print(f"--- {server.log.name} ---\n{server.output()[-3000:]}")
            raise
    (artifacts / "rolling.json").write_text(json.dumps(out, indent=1))
    clients = out["clients"]
    assert out["lastStatus"] == 200
    for client in clients:
        assert client["closed"] is None, client  # nobody gave up
        assert client["reconnects"] >= 1, client
        # Every reconnect succeeded at its first attempt (delay 0): no refusal on the way
        # cost a client one of its four attempts or the 2 s wait before the next.
        assert client["retryCounts"] == [0] * client["reconnects"], client
        assert 1006 not in client["closeCodes"], client
        assert client["lastBroadcast"] is True, client
        assert client["invocations"] > 0, client
        assert all(w["drainingAtConnect"] is False for w in client["workers"]), client
        # Only invocations in flight on a connection being moved failed: at most one per
        # move (the loop is sequential), never on the connection the client has now.
        assert len(client["failures"]) <= client["reconnects"], client
        for failure in client["failures"]:
            assert failure["id"] in client["ids"][:-1], client
    assert {c["via"] for c in clients} == {"proxy", "wsgi"}
    for old in drained:
        log = old.output()
        draining = after_drain(log)
        assert not ACCEPTED.search(draining), draining[-3000:]
        assert not re.search(r"Killed [1-9]\d* pending application instances", log), log[-3000:]
        assert "Drain timeout" not in log
        assert "Listen failure" not in log
    for server in deployment.workers:
        assert "Listen failure" not in server.output()


def negotiate_redirect(web: Server) -> str:
    request = urllib.request.Request(f"{web.url}/site/hubs/test/negotiate", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        url: str = json.loads(response.read())["url"]
        return url


def test_a_draining_worker_leaves_the_wsgi_redirect_at_once(
    redis: str, artifacts: Path, test_db: str
) -> None:
    """The load report is withdrawn as the drain starts, not left to expire."""
    with contextlib.ExitStack() as stack:
        deployment = Deployment(stack, redis, artifacts, test_db)
        first, second = deployment.urls
        # Both idle: ties go to the first listed worker.
        wait_until(lambda: negotiate_redirect(deployment.web).startswith(first), 30, lambda: "")
        worker = deployment.workers[0]
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(60) == 0
        # Its last report would live 3 intervals (1.5 s) more; the redirect skips it now.
        for _ in range(5):
            assert negotiate_redirect(deployment.web).startswith(second)


@contextlib.contextmanager
def shared_socket() -> Iterator[socket.socket]:
    """A listening socket held by this process (as systemd holds a .socket unit's)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    sock.setblocking(False)  # Twisted adopts non-blocking sockets only
    sock.set_inheritable(True)
    with sock:
        yield sock


def daphne_on_fd(
    stack: contextlib.ExitStack, sock: socket.socket, name: str, artifacts: Path, db: str
) -> Server:
    """Daphne serving on an inherited listening socket (`daphne --fd N`)."""
    fd = sock.fileno()
    log = artifacts / f"{name}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONUNBUFFERED": "1",
        "SIGNALR_TEST_DB": db,
        "SIGNALR_TEST_LOG_LEVEL": "INFO",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(fd), ASGI],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=(fd,),
            preexec_fn=raise_file_limit,
        )
    server = Server(proc, sock.getsockname()[1], log)
    stack.callback(server.stop)
    wait_until(lambda: "Listening on TCP address" in server.output(), 60, server.output)
    return server


class NodeLine:
    """A Node script whose JSON lines are read as they come."""

    def __init__(self, script: str, url: str, transport: str = "") -> None:
        node_available()
        self.proc = subprocess.Popen(
            ["node", str(JS_DIR / script), url],
            cwd=ROOT,
            env={**os.environ, "SIGNALR_TRANSPORT": transport},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.lines.put(line)
        self.lines.put(None)

    def line(self, timeout: float) -> Any:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.kill()
            _, stderr = self.proc.communicate(timeout=10)
            pytest.fail(f"the Node client printed nothing more:\n{stderr[-4000:]}")
        return json.loads(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.mark.parametrize(
    ("mode", "transport"),
    [
        ("overlapping", "WebSockets"),
        ("one-after-the-other", "WebSockets"),
        ("overlapping", "ServerSentEvents"),
        ("overlapping", "LongPolling"),
    ],
)
def test_a_replacement_takes_over_a_shared_listening_socket(
    artifacts: Path, test_db: str, mode: str, transport: str
) -> None:
    """`daphne --fd`: the listening socket belongs to a parent (systemd, a supervisor).

    Overlapping: the replacement runs before the old worker gets SIGTERM; both accept from
    the one socket until the drain closes the old worker's copy. One after the other (what
    `systemctl restart` does): the reconnect waits in the socket's queue until the
    replacement accepts it. Either way the client's first reconnect attempt succeeds, on
    the replacement.
    """
    with contextlib.ExitStack() as stack, shared_socket() as sock:
        old = daphne_on_fd(stack, sock, f"fd-old-{mode}-{transport}", artifacts, test_db)
        url = f"http://127.0.0.1:{old.port}"
        client = NodeLine("handover.mjs", url, transport)
        stack.callback(client.kill)
        ready = client.line(60)["ready"]
        assert ready["pid"] == old.proc.pid
        new: Server | None = None
        if mode == "overlapping":
            new = daphne_on_fd(stack, sock, f"fd-new-{mode}-{transport}", artifacts, test_db)
        old.proc.send_signal(signal.SIGTERM)
        assert old.proc.wait(60) == 0, old.output()[-3000:]
        if new is None:
            new = daphne_on_fd(stack, sock, f"fd-new-{mode}-{transport}", artifacts, test_db)
        seen = client.line(120)
        log = old.output()
    (artifacts / f"handover-{mode}-{transport}.json").write_text(json.dumps(seen))
    assert seen["closed"] is None, seen
    assert seen["worker"]["pid"] == new.proc.pid, seen
    assert seen["worker"]["drainingAtConnect"] is False
    assert seen["echo"] == "after"
    assert seen["retryCounts"] == [0], seen
    assert seen["errors"] == [], seen  # a Close, no failed request on the way
    assert 1006 not in seen["closeCodes"], seen
    assert not ACCEPTED.search(after_drain(log)), log[-3000:]
    assert "Stopped listening on 1 socket(s)" in log


def test_uvicorn_stops_listening_as_the_drain_starts(artifacts: Path, test_db: str) -> None:
    """With the lifespan app, uvicorn's listening socket is closed before the drain, not
    after it: the client's reconnect cannot land on the draining process, and the
    replacement binds the port."""
    port = free_port()
    env = {"SIGNALR_TEST_DB": test_db, "SIGNALR_TEST_LOG_LEVEL": "INFO"}
    with contextlib.ExitStack() as stack:
        old = stack.enter_context(uvicorn(ASGI, "tests.settings", artifacts, env, "uv-old", port))
        client = NodeLine("handover.mjs", old.url)
        stack.callback(client.kill)
        assert client.line(60)["ready"]["pid"] == old.proc.pid
        old.proc.send_signal(signal.SIGTERM)
        # uvicorn raises the signal again once it has shut down: it ends "killed" by it.
        assert old.proc.wait(60) in (0, -signal.SIGTERM), old.output()[-3000:]
        new = stack.enter_context(uvicorn(ASGI, "tests.settings", artifacts, env, "uv-new", port))
        seen = client.line(120)
        log = old.output()
    assert seen["closed"] is None, seen
    assert seen["worker"]["pid"] == new.proc.pid, seen
    assert seen["worker"]["drainingAtConnect"] is False
    assert 1006 not in seen["closeCodes"], seen
    stopped = log.find("Stopped listening on 1 socket(s)")
    assert 0 <= stopped < log.find("Closed 1 connection(s) for shutdown"), log[-3000:]
