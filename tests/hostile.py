"""Hostile clients and the measurements around them, for the isolation tests.

A hostile client is a raw WebSocket (tests.rawws) that misbehaves on purpose: it never
acknowledges, never reads, reads a few bytes a second, or acknowledges messages it was never
sent. The control client that must not notice is the official JavaScript client
(tests/e2e/js/control.mjs), run here as a subprocess so both act at the same time.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.rawws import RawWebSocket
from tests.servers import ROOT, Server

RS = "\x1e"
JS_DIR = ROOT / "tests" / "e2e" / "js"


# -- server memory -----------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """The process's resident set size (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class PeakRss:
    """Samples a process's RSS every 50 ms in a thread; `growth_kib` is peak minus start."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = rss_kib(pid)
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(OSError, AssertionError):
                self.peak = max(self.peak, rss_kib(self.pid))

    @property
    def growth_kib(self) -> int:
        """Largest growth seen so far."""
        return self.peak - self.start

    def stop(self) -> int:
        """Stop sampling; the largest growth seen."""
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(OSError, AssertionError):
            self.peak = max(self.peak, rss_kib(self.pid))
        return self.growth_kib


# -- raw hub connections ---------------------------------------------------------------------


def negotiate(server: Server, hub: str, stateful: bool) -> dict[str, Any]:
    """POST negotiate v1 (asking for stateful reconnect when `stateful`); the JSON body."""
    query = "negotiateVersion=1" + ("&useStatefulReconnect=true" if stateful else "")
    request = urllib.request.Request(f"{server.url}{hub}/negotiate?{query}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def record(message: dict[str, Any]) -> str:
    """One JSON-protocol record."""
    return json.dumps(message, separators=(",", ":")) + RS


def open_hub(
    server: Server, hub: str, stateful: bool = False, rcvbuf: int | None = None
) -> RawWebSocket:
    """A raw WebSocket hub connection past its handshake (JSON protocol).

    Stateful: negotiate v1 with `useStatefulReconnect=true`, connect with the token and
    handshake with version 2, as the official client does; the server must grant it.
    """
    path = hub
    version = 1
    if stateful:
        body = negotiate(server, hub, stateful=True)
        assert body.get("useStatefulReconnect") is True, body
        path = f"{hub}?id={body['connectionToken']}"
        version = 2
    ws = RawWebSocket(server.port, path=path, rcvbuf=rcvbuf)
    assert ws.status == 101, ws.status
    ws.send_text(record({"protocol": "json", "version": version}))
    assert ws.recv_text() == "{}" + RS
    return ws


def invoke(server: Server, hub: str, target: str, *args: Any, timeout: float = 30) -> Any:
    """Invoke `target` on a fresh connection and return its result (None on error)."""
    ws = open_hub(server, hub)
    try:
        ws.sock.settimeout(timeout)
        ws.send_text(
            record({"type": 1, "invocationId": "q", "target": target, "arguments": list(args)})
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in ws.recv_text().split(RS):
                if text:
                    message = json.loads(text)
                    if message.get("type") == 3 and message.get("invocationId") == "q":
                        return message.get("result")
        raise TimeoutError(f"{target} did not complete in {timeout} s")
    finally:
        ws.close()


def read_to_end(ws: RawWebSocket, timeout: float) -> dict[str, Any]:
    """Read everything the server still sends until it closes the connection.

    Returns the Close message it sent (if any), whether the stream ended within `timeout`
    and how many Broadcast records were read on the way.
    """
    ws.sock.settimeout(1.0)
    deadline = time.monotonic() + timeout
    outcome: dict[str, Any] = {"close": None, "ended": False, "broadcasts": 0, "how": ""}
    while time.monotonic() < deadline:
        try:
            opcode, payload = ws.recv_frame()
        except TimeoutError:
            continue
        except (ConnectionError, OSError) as exc:
            outcome.update(ended=True, how=f"socket: {exc}")
            return outcome
        if opcode == 0x8:
            outcome.update(ended=True, how="close frame")
            return outcome
        if opcode in (0x1, 0x2):
            for text in payload.decode("utf-8", "replace").split(RS):
                if not text:
                    continue
                message = json.loads(text)
                if message.get("type") == 7:
                    outcome["close"] = message
                elif message.get("type") == 1 and message.get("target") == "Broadcast":
                    outcome["broadcasts"] += 1
    outcome["how"] = f"still open after {timeout} s"
    return outcome


class Reader(threading.Thread):
    """Reads a raw connection in the background, `rate` bytes a second (None: at once).

    `read_to_end` is stored in `outcome` when the server ends the connection while the
    thread runs; a slow reader becomes a fast one after `finish()`.
    """

    def __init__(self, ws: RawWebSocket, rate: float | None = None, chunk: int = 64) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.rate = rate
        self.chunk = chunk
        self.outcome: dict[str, Any] | None = None
        self._fast = threading.Event()
        if rate is None:
            self._fast.set()

    def run(self) -> None:
        sock = self.ws.sock
        interval = self.chunk / self.rate if self.rate else 0.0
        while not self._fast.is_set():
            try:
                sock.settimeout(1.0)
                data = sock.recv(self.chunk)
            except TimeoutError:
                data = b"?"
            except OSError:
                data = b""
            if not data:
                self.outcome = {"close": None, "ended": True, "broadcasts": 0, "how": "EOF"}
                return
            if data != b"?":
                self.ws.buffer += data
            self._fast.wait(interval)
        self.outcome = read_to_end(self.ws, 60.0)

    def finish(self, timeout: float) -> dict[str, Any]:
        """Read the rest at full speed; what `read_to_end` saw (ended within `timeout`?)."""
        self._fast.set()
        self.join(timeout)
        if self.outcome is None:
            return {"close": None, "ended": False, "broadcasts": 0, "how": "reader still busy"}
        return self.outcome


class Acker(threading.Thread):
    """Sends `Ack` with a fixed sequence id every `interval` s until stopped or refused."""

    def __init__(self, ws: RawWebSocket, sequence_id: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.frame = record({"type": 8, "sequenceId": sequence_id})
        self.interval = interval
        self.sent = 0
        self.refused: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        self.ws.sock.settimeout(5.0)
        while not self._halt.is_set():
            try:
                self.ws.send_text(self.frame)
            except OSError as exc:  # the server closed the connection (or stopped reading)
                self.refused = f"{type(exc).__name__}: {exc}"
                return
            self.sent += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        """Stop sending."""
        self._halt.set()
        self.join(10)


# -- the control client ------------------------------------------------------------------------


class Control:
    """tests/e2e/js/control.mjs running against `server`; `result()` is what it measured."""

    def __init__(self, server: Server, **options: Any) -> None:
        self.proc = subprocess.Popen(
            ["node", str(JS_DIR / "control.mjs"), server.url, json.dumps(options)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith('{"ready"'):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"control client did not start: {line!r}\n{err[-3000:]}")
        self.ready: dict[str, Any] = json.loads(line)
        self.started = time.monotonic()

    def result(self, timeout: float = 120) -> dict[str, Any]:
        """Wait for the control to finish; its measurements."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
            raise AssertionError(
                f"control client did not finish:\n{out[-2000:]}\n{err[-2000:]}"
            ) from None
        lines = [line for line in out.splitlines() if line.strip()]
        if self.proc.returncode != 0 or not lines:
            raise AssertionError(f"control client failed ({self.proc.returncode}):\n{err[-3000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def kill(self) -> None:
        """Stop it if it still runs (test teardown)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)
