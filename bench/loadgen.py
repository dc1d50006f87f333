"""Load generator speaking the SignalR JSON hub protocol over raw WebSockets.

Scenarios:

* ``echo``: C connections each invoke ``Echo`` in a closed loop (one invocation in flight per
  connection) for D seconds after a warm-up; then one connection alone for the C=1 latency.
  Reports invocations/s, round-trip percentiles and the server's CPU per invocation. With
  ``--transport sse`` or ``longpolling`` the connections use Server-Sent Events or long
  polling (over aiohttp) instead of a WebSocket.
* ``idle``: open K connections as fast as possible with bounded concurrency, report the connect
  rate and the server's RSS growth per connection once they sit idle, then close them all.
* ``broadcast``: N receivers spread over one or two servers ``Join`` a group; one sender
  keeps K ``Broadcast`` invocations in flight, each payload carrying its sequence number and
  send time. Reports deliveries/s, delivery latency (local and remote server), both servers'
  CPU per delivery and Redis commands per broadcast (``INFO commandstats``).

The generator is deliberately thin (picows + uvloop when installed, one record parser, no
per-call timers) so that it stays far faster than the servers it measures; ``run.py`` proves it
by driving a bare ``websockets`` server in the same run. Results are printed as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    import aiohttp

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import raise_nofile_limit, run_async

try:
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is optional

    def _loads(data: bytes) -> Any:
        return json.loads(data)

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


RS = b"\x1e"
HANDSHAKE_REQUEST = b'{"protocol":"json","version":1}' + RS
PING_MESSAGE = b'{"type":6}' + RS
MISSING = object()
"""Returned by :meth:`HubConnection.invoke` for a Completion without ``result`` (a void method)."""


# --------------------------------------------------------------------------- environment


def loop_name() -> str:
    """Name the event loop implementation, so results say what the generator ran on."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def default_client() -> str:
    """Prefer picows (C WebSocket framing, ~2x cheaper per frame) and fall back to websockets."""
    try:
        import picows  # noqa: F401
    except ImportError:
        return "websockets"
    return "picows"


# --------------------------------------------------------------------------- /proc sampling


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_cpu_seconds(pid: int | None) -> float | None:
    """User+system CPU seconds of ``pid`` (all threads) from /proc; None without a pid."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    # Fields after the command name start at field 3 (state); utime/stime are fields 14/15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def read_machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine (all cores) from /proc/stat."""
    with open("/proc/stat", "rb") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user/nice
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def read_rss_kib(pid: int | None) -> int | None:
    """Resident set size of ``pid`` in KiB (VmRSS); None without a pid."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1])
    return None


# --------------------------------------------------------------------------- SignalR client


class HubError(Exception):
    """The server answered with an error (handshake error, error Completion or Close)."""


class ConnectionLost(Exception):
    """The WebSocket closed while an operation was waiting on it."""


class Wire(Protocol):
    """The WebSocket under a :class:`HubConnection`: send one text frame, close."""

    async def send(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class HubConnection:
    """One SignalR JSON-protocol connection, independent of the WebSocket library below it.

    The transport calls :meth:`feed` with every frame's payload; records are split on 0x1E
    wherever they fall, so frames carrying several messages (or a message split across
    frames) are handled alike.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._buffer = b""
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._handshake: asyncio.Future[None] = self._loop.create_future()
        self._next_id = 0
        self.wire: Wire | None = None
        self.closed = False
        self.close_error: str | None = None
        self.on_invocation: Callable[[dict[str, Any]], None] | None = None
        """Called with every Invocation the server sends (``Receive`` in the broadcast)."""

    # -- inbound ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Accept a frame payload and dispatch every complete record in the buffer."""
        buffer = self._buffer + data if self._buffer else data
        if RS not in buffer:
            self._buffer = buffer
            return
        *records, self._buffer = buffer.split(RS)
        for record in records:
            if record:
                self._on_record(record)

    def _on_record(self, record: bytes) -> None:
        """Handle one JSON record: the handshake reply first, then hub messages."""
        if not self._handshake.done():
            reply = _loads(record)
            if reply.get("error"):
                self._handshake.set_exception(HubError(f"handshake: {reply['error']}"))
            else:
                self._handshake.set_result(None)
            return
        message = _loads(record)
        kind = message.get("type")
        if kind == 3:
            future = self._pending.pop(message.get("invocationId"), None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(HubError(str(message["error"])))
                else:
                    future.set_result(message.get("result", MISSING))
        elif kind == 1:
            if self.on_invocation is not None:
                self.on_invocation(message)
        elif kind == 7:
            self.close_error = message.get("error") or "closed by server"
        # Pings (6) and anything else are ignored, as a real client would.

    def connection_lost(self) -> None:
        """Fail everything still waiting: the socket is gone."""
        self.closed = True
        error = ConnectionLost(self.close_error or "connection closed")
        if not self._handshake.done():
            self._handshake.set_exception(error)
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    # -- outbound --------------------------------------------------------------------------

    async def handshake(self, timeout: float) -> None:
        """Send the JSON protocol handshake and wait for ``{}``."""
        assert self.wire is not None
        await self.wire.send(HANDSHAKE_REQUEST)
        await asyncio.wait_for(asyncio.shield(self._handshake), timeout)

    async def invoke(self, target: str, *arguments: Any) -> Any:
        """Invoke ``target`` and return the Completion's result (or :data:`MISSING`)."""
        return await (await self.start_invocation(target, *arguments))

    async def start_invocation(self, target: str, *arguments: Any) -> asyncio.Future[Any]:
        """Send an invocation and return the future of its Completion without waiting for it.

        The broadcast sender keeps several invocations in flight on one connection and paces
        itself on deliveries, not on Completions.
        """
        if self.closed or self.wire is None:
            raise ConnectionLost(self.close_error or "connection closed")
        self._next_id += 1
        invocation_id = str(self._next_id)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending[invocation_id] = future
        message = {
            "type": 1,
            "invocationId": invocation_id,
            "target": target,
            "arguments": list(arguments),
        }
        await self.wire.send(_dumps(message) + RS)
        return future

    async def ping(self) -> None:
        """Send a keep-alive ping so a server enforcing a client timeout keeps us."""
        if not self.closed and self.wire is not None:
            await self.wire.send(PING_MESSAGE)

    async def close(self) -> None:
        """Close the WebSocket gracefully (close frame, then wait for the peer)."""
        if self.wire is not None and not self.closed:
            await self.wire.close()
        self.closed = True


# --------------------------------------------------------------------------- WebSocket wires


class _PicowsWire:
    """:class:`Wire` over a picows transport (frames arrive in :class:`_PicowsListener`)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    async def send(self, data: bytes) -> None:
        from picows import WSMsgType

        self.transport.send(WSMsgType.TEXT, data)

    async def close(self, timeout: float = 5.0) -> None:
        from picows import WSCloseCode

        self.transport.send_close(WSCloseCode.OK)
        try:
            await asyncio.wait_for(self.transport.wait_disconnected(), timeout)
        except Exception:
            self.transport.disconnect()


async def _open_picows(url: str, conn: HubConnection, timeout: float) -> Wire:
    """Connect with picows; frames are fed straight into ``conn``."""
    from picows import WSListener, WSMsgType, ws_connect

    class _PicowsListener(WSListener):
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            kind = frame.msg_type
            if kind in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
                conn.feed(frame.get_payload_as_bytes())
            elif kind == WSMsgType.CLOSE:
                if not transport.is_close_frame_sent:
                    transport.send_close(frame.get_close_code())
                transport.disconnect()

        def on_ws_disconnected(self, transport: Any) -> None:
            conn.connection_lost()

    transport, _listener = await ws_connect(
        _PicowsListener, url, websocket_handshake_timeout=timeout, logger_name="loadgen"
    )
    return _PicowsWire(transport)


class _WebsocketsWire:
    """:class:`Wire` over a ``websockets`` asyncio client connection plus its reader task."""

    def __init__(self, ws: Any, conn: HubConnection) -> None:
        self.ws = ws
        self.reader = asyncio.create_task(self._read(conn))

    async def _read(self, conn: HubConnection) -> None:
        """Feed every frame into ``conn`` until the socket closes."""
        try:
            while True:
                conn.feed(await self.ws.recv(decode=False))
        except Exception:
            pass
        finally:
            conn.connection_lost()

    async def send(self, data: bytes) -> None:
        await self.ws.send(data, text=True)

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


async def _open_websockets(url: str, conn: HubConnection, timeout: float) -> Wire:
    """Connect with the ``websockets`` asyncio client (no compression, no client pings)."""
    from websockets.asyncio.client import connect

    ws = await connect(
        url, compression=None, max_size=None, open_timeout=timeout, ping_interval=None
    )
    return _WebsocketsWire(ws, conn)


# --------------------------------------------------------------------------- connecting


@dataclass(frozen=True)
class Endpoint:
    """Where the hub lives, parsed once from ``ws://host:port/path``."""

    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError(f"expected ws://host:port/path, got {url!r}")
        return cls(parts.hostname, parts.port or 80, parts.path or "/")

    def ws_url(self, token: str | None) -> str:
        query = f"?id={quote(token, safe='')}" if token else ""
        return f"ws://{self.host}:{self.port}{self.path}{query}"

    def http_url(self) -> str:
        """The hub's URL for negotiate and the HTTP transports (no trailing slash)."""
        return f"http://{self.host}:{self.port}{self.path.rstrip('/')}"


async def negotiate(endpoint: Endpoint, timeout: float) -> str:
    """``POST {hub}/negotiate?negotiateVersion=1`` with a minimal HTTP/1.1 client.

    A hand-rolled request keeps the generator free of an HTTP client dependency; it reads
    to EOF (``Connection: close``) and understands chunked bodies, which Twisted may send.
    """
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(endpoint.host, endpoint.port), timeout
    )
    try:
        path = endpoint.path.rstrip("/") + "/negotiate?negotiateVersion=1"
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    status = int(status_line.split()[1])
    if status != 200:
        raise HubError(f"negotiate: HTTP {status}: {body[:200]!r}")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (h.partition(b":") for h in header_lines)
    }
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _dechunk(body)
    return _connection_token(body)


def _connection_token(body: bytes) -> str:
    """The token a negotiate reply gives the transport (``connectionId`` before version 1)."""
    reply = json.loads(body)
    token = reply.get("connectionToken") or reply.get("connectionId")
    if not token:
        raise HubError(f"negotiate: no connectionToken in {reply!r}")
    return str(token)


def _dechunk(body: bytes) -> bytes:
    """Decode an HTTP/1.1 chunked body (trailers ignored)."""
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return bytes(out)


# --------------------------------------------------------------------------- HTTP transports


WEBSOCKETS, SSE, LONG_POLLING = "websockets", "sse", "longpolling"
TRANSPORTS = (WEBSOCKETS, SSE, LONG_POLLING)
TEXT_BODY = {"Content-Type": "text/plain;charset=UTF-8"}
EVENT_STREAM = {"Accept": "text/event-stream"}

_HTTP_SESSIONS: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def _http_session() -> aiohttp.ClientSession:
    """This event loop's aiohttp session: one keep-alive pool shared by every connection.

    Sharing the pool is what keeps the generator cheap: a POST reuses whichever socket to the
    server is idle instead of paying a TCP handshake, so the server sees the steady-state
    cost of a request, as it would behind a browser's (or a proxy's) persistent connections.
    No connection limit (a long poll or an event stream holds its socket for as long as it
    is open), no cookie jar and no decompression: nothing the server's figures depend on.
    """
    import aiohttp

    loop = asyncio.get_running_loop()
    session = _HTTP_SESSIONS.get(loop)
    if session is None or session.closed:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=120),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=20),
            auto_decompress=False,
        )
        _HTTP_SESSIONS[loop] = session
    return session


async def close_http_session() -> None:
    """Close this event loop's session (a no-op when no HTTP transport was used)."""
    session = _HTTP_SESSIONS.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


async def _negotiate_http(session: aiohttp.ClientSession, base: str) -> str:
    """``POST {hub}/negotiate?negotiateVersion=1`` over the shared keep-alive pool."""
    async with session.post(f"{base}/negotiate?negotiateVersion=1") as resp:
        body = await resp.read()
        if resp.status != 200:
            raise HubError(f"negotiate: HTTP {resp.status}: {body[:200]!r}")
    return _connection_token(body)


class _HttpWire:
    """What the two HTTP transports share: POSTs carry records out, a reader task brings
    records back and ends the connection when it stops."""

    def __init__(self, session: aiohttp.ClientSession, url: Any, conn: HubConnection) -> None:
        self.session = session
        self.url = url
        self.conn = conn
        self.reader: asyncio.Task[None] | None = None

    async def send(self, data: bytes) -> None:
        async with self.session.post(self.url, data=data, headers=TEXT_BODY) as resp:
            await resp.read()
            if resp.status != 200:
                raise ConnectionLost(f"POST HTTP {resp.status}")

    def _start_reader(self, inbound: Callable[[], Awaitable[None]], what: str) -> None:
        """Run ``inbound()`` as the reader; when it ends, for whatever reason, so does the
        connection (a failure becomes its ``close_error``, prefixed with ``what``)."""

        async def read() -> None:
            try:
                await inbound()
            except Exception as exc:
                self.conn.close_error = self.conn.close_error or f"{what} {_describe(exc)}"
            finally:
                self._reader_ended()
                self.conn.connection_lost()

        self.reader = asyncio.create_task(read())

    def _reader_ended(self) -> None:
        """Hook: the reader has stopped (before the connection is marked lost)."""

    async def _join_reader(self) -> None:
        """Give the reader 5 s to see the end of the connection, then cancel it."""
        if self.reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.reader), 5)
            except TimeoutError:
                self.reader.cancel()


class _LongPollingWire(_HttpWire):
    """:class:`Wire` over long polling: POSTs carry records out, polls bring them back.

    Exactly one poll is outstanding at a time (a second one would end the first with 204),
    as in the official clients; a 204 means the server ended the connection.
    """

    async def start(self) -> None:
        """The first poll returns at once and is what creates the connection on the server."""
        async with self.session.get(self.url) as resp:
            await resp.read()
            if resp.status != 200:
                raise HubError(f"long polling: first poll HTTP {resp.status}")
        self._start_reader(self._poll, "poll")

    async def _poll(self) -> None:
        """Poll back to back, feeding every body to the connection, until the server ends it."""
        while True:
            async with self.session.get(self.url) as resp:
                body = await resp.read()
                status = resp.status
            if status == 204:
                return
            if status != 200:
                self.conn.close_error = f"poll HTTP {status}"
                return
            if body:
                self.conn.feed(body)

    async def close(self) -> None:
        """``DELETE`` ends the connection; the outstanding poll then returns 204."""
        try:
            async with self.session.delete(self.url) as resp:
                await resp.read()
        except Exception:
            pass
        await self._join_reader()


class _SseWire(_HttpWire):
    """:class:`Wire` over Server-Sent Events: one event stream in, POSTs out.

    Each hub record arrives as one event (``data: <record>``, then a blank line). The parser
    takes CRLF or LF line ends and joins multi-line ``data`` fields with LF, as EventSource
    does; comments (the ``:`` the stream opens with) and other fields are skipped.
    """

    def __init__(self, session: aiohttp.ClientSession, url: Any, conn: HubConnection) -> None:
        super().__init__(session, url, conn)
        self.response: aiohttp.ClientResponse | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        """Open the stream and wait for its first bytes: only then may the handshake go."""
        resp = await self.session.get(self.url, headers=EVENT_STREAM)
        if resp.status != 200:
            body = await resp.read()
            resp.release()
            raise HubError(f"event stream: HTTP {resp.status}: {body[:200]!r}")
        self.response = resp
        self._start_reader(lambda: self._read(resp), "event stream")
        await asyncio.shield(self.opened)

    async def _read(self, resp: aiohttp.ClientResponse) -> None:
        """Split the stream into events and feed each event's data to the connection."""
        pending = b""
        data: list[bytes] = []
        async for chunk in resp.content.iter_any():
            if not self.opened.done():
                self.opened.set_result(None)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line.endswith(b"\r"):
                    line = line[:-1]
                if not line:
                    if data:
                        self.conn.feed(b"\n".join(data))
                        data = []
                elif line.startswith(b"data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(b" ") else value)
        self.conn.close_error = self.conn.close_error or "event stream ended"

    def _reader_ended(self) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionLost(self.conn.close_error or "no stream"))

    async def close(self) -> None:
        """Closing the stream is how an SSE client leaves (DELETE is for long polling only)."""
        if self.response is not None:
            self.response.close()
        await self._join_reader()


async def _open_http(cfg: ClientConfig) -> HubConnection:
    """Negotiate, start an SSE or long-polling connection and complete the handshake."""
    from yarl import URL

    session = _http_session()
    base = cfg.endpoint.http_url()
    token = await asyncio.wait_for(_negotiate_http(session, base), cfg.timeout)
    # Parsed once: every POST and poll reuses it instead of re-parsing a string.
    url = URL(f"{base}?id={quote(token, safe='')}", encoded=True)
    conn = HubConnection()
    wire: _LongPollingWire | _SseWire
    if cfg.transport == LONG_POLLING:
        wire = _LongPollingWire(session, url, conn)
    else:
        wire = _SseWire(session, url, conn)
    conn.wire = wire
    try:
        await asyncio.wait_for(wire.start(), cfg.timeout)
        await conn.handshake(cfg.timeout)
    except BaseException:
        await _abort(conn)
        raise
    return conn


# --------------------------------------------------------------------------- opening


@dataclass(frozen=True)
class ClientConfig:
    """How every connection is opened."""

    endpoint: Endpoint
    negotiate: bool = False
    client: str = "picows"
    timeout: float = 20.0
    transport: str = WEBSOCKETS


async def open_connection(cfg: ClientConfig) -> HubConnection:
    """Open one hub connection on ``cfg.transport`` and complete the SignalR handshake.

    WebSockets negotiate only with ``cfg.negotiate``; the HTTP transports always do, since
    their requests are addressed by the connection token.
    """
    if cfg.transport != WEBSOCKETS:
        return await _open_http(cfg)
    token = await negotiate(cfg.endpoint, cfg.timeout) if cfg.negotiate else None
    url = cfg.endpoint.ws_url(token)
    conn = HubConnection()
    opener = _open_picows if cfg.client == "picows" else _open_websockets
    conn.wire = await asyncio.wait_for(opener(url, conn, cfg.timeout), cfg.timeout)
    try:
        await conn.handshake(cfg.timeout)
    except BaseException:
        await _abort(conn)
        raise
    return conn


async def _abort(conn: HubConnection) -> None:
    """Close a half-open connection without letting a second failure mask the first."""
    try:
        await asyncio.wait_for(conn.close(), 2)
    except Exception:
        pass


@dataclass
class OpenResult:
    """Connections opened by :func:`open_many`, with timing and failure reasons."""

    conns: list[HubConnection] = field(default_factory=list)
    connect_seconds: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0


async def open_many(
    cfg: ClientConfig,
    count: int,
    concurrency: int,
    cap: float,
    prepare: Callable[[HubConnection], Awaitable[None]] | None = None,
) -> OpenResult:
    """Open ``count`` connections with at most ``concurrency`` in flight, within ``cap`` s.

    Workers pull from a shared budget instead of one task per connection so that the number
    of simultaneous handshakes is exactly ``concurrency`` (a burst of thousands would measure
    the listen backlog rather than the server). ``prepare`` runs on each new connection
    inside the same bound (the broadcast's ``Join``); a connection it fails on is closed and
    counted as an error.
    """
    result = OpenResult(started=time.monotonic())
    deadline = result.started + cap
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            begun = time.perf_counter()
            try:
                conn = await open_connection(cfg)
            except Exception as exc:
                result.errors[_describe(exc)] += 1
                continue
            if prepare is not None:
                try:
                    await asyncio.wait_for(prepare(conn), cfg.timeout)
                except Exception as exc:
                    result.errors[f"prepare {_describe(exc)}"] += 1
                    await _abort(conn)
                    continue
            result.connect_seconds.append(time.perf_counter() - begun)
            result.conns.append(conn)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    result.finished = time.monotonic()
    return result


async def close_all(conns: Sequence[HubConnection], concurrency: int = 500) -> None:
    """Close connections gracefully, many at once but not all (close handshakes queue up)."""
    gate = asyncio.Semaphore(concurrency)

    async def close_one(conn: HubConnection) -> None:
        async with gate:
            await _abort(conn)

    await asyncio.gather(*(close_one(c) for c in conns))


def _describe(exc: BaseException) -> str:
    """A short, groupable description of why a connection or invocation failed."""
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds rounded for the report."""
    return None if seconds is None else round(seconds * 1000, 3)


# --------------------------------------------------------------------------- echo scenario


@dataclass
class EchoTally:
    """What the closed-loop workers saw inside the measurement window."""

    latencies: list[float] = field(default_factory=list)
    wrong_result: int = 0
    missing_result: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    stalled: int = 0
    opened: int = 0
    client_cpu: float = 0.0
    recording: bool = False

    def merge(self, other: EchoTally) -> None:
        """Fold another generator process's tally into this one."""
        self.latencies += other.latencies
        self.wrong_result += other.wrong_result
        self.missing_result += other.missing_result
        self.errors.update(other.errors)
        self.stalled += other.stalled
        self.opened += other.opened
        self.client_cpu += other.client_cpu


async def _echo_loop(
    conn: HubConnection, payload: str, tally: EchoTally, stop: asyncio.Event
) -> None:
    """Invoke Echo back to back on one connection; count only completions in the window."""
    clock = time.perf_counter
    while not stop.is_set():
        begun = clock()
        try:
            result = await conn.invoke("Echo", payload)
        except HubError as exc:
            if tally.recording:
                tally.errors[_describe(exc)] += 1
            continue
        except ConnectionLost as exc:
            tally.errors[_describe(exc)] += 1
            return
        elapsed = clock() - begun
        if tally.recording:
            tally.latencies.append(elapsed)
            if result is MISSING:
                tally.missing_result += 1
            elif result != payload:
                tally.wrong_result += 1


async def closed_loop(
    conns: Sequence[HubConnection], payload: str, warmup: float, duration: float
) -> EchoTally:
    """Run every connection in a closed loop; record ``duration`` s after ``warmup`` s.

    The generator's own CPU is sampled at the window edges: a generator near 100 % of a core
    would be the bottleneck, and the report must say so.
    """
    tally = EchoTally(opened=len(conns))
    stop = asyncio.Event()
    workers = [asyncio.create_task(_echo_loop(c, payload, tally, stop)) for c in conns]
    await asyncio.sleep(warmup)
    tally.recording = True
    cpu_start = time.process_time()
    await asyncio.sleep(duration)
    tally.recording = False
    tally.client_cpu = time.process_time() - cpu_start
    stop.set()
    if not workers:
        return tally
    _done, stalled = await asyncio.wait(workers, timeout=5)
    for task in stalled:
        task.cancel()
    tally.stalled = len(stalled)
    return tally


@dataclass(frozen=True)
class EchoConfig:
    """Parameters of the echo scenario."""

    connections: int = 50
    duration: float = 10.0
    warmup: float = 2.0
    latency_duration: float = 3.0
    latency_warmup: float = 0.5
    payload_size: int = 64
    procs: int = 1


def make_payload(size: int) -> str:
    """A printable ASCII payload (no JSON escaping) of exactly ``size`` bytes."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return (alphabet * (size // len(alphabet) + 1))[:size]


async def _echo_share(
    cfg: ClientConfig, echo: EchoConfig, count: int, barrier: Barrier
) -> EchoTally:
    """Open this process's connections, wait for the others, run the closed loop, close.

    The barrier makes every generator process (and the sampling parent) start the warm-up
    at the same instant, so one wall-clock window covers all of them.
    """
    opened = await open_many(cfg, count, concurrency=50, cap=cfg.timeout * 3)
    if not opened.conns:
        raise ConnectionLost(f"no connection opened: {dict(opened.errors)}")
    barrier.wait(timeout=cfg.timeout * 3 + 30)
    tally = await closed_loop(
        opened.conns, make_payload(echo.payload_size), echo.warmup, echo.duration
    )
    tally.errors.update({f"connect {k}": v for k, v in opened.errors.items()})
    await close_all(opened.conns)
    await close_http_session()
    return tally


def _echo_child(
    cfg: ClientConfig, echo: EchoConfig, count: int, barrier: Barrier, queue: Any
) -> None:
    """Entry point of a forked generator process: run a share and send back the tally."""
    try:
        queue.put(run_async(_echo_share(cfg, echo, count, barrier)))
    except BaseException as exc:
        barrier.abort()
        queue.put(exc)
        raise


def _spawn(target: Callable[..., None], shares: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Fork one generator process per share.

    The parent never runs an event loop while children are alive (it only sleeps and reads
    /proc), so forking is safe and the sampling cannot steal time from the generator.
    """
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=target, args=share, daemon=True) for share in shares]
    for child in children:
        child.start()
    return children


def _collect(queue: Any, count: int, timeout: float) -> list[Any]:
    """Receive ``count`` reports from children; re-raise a child's exception here."""
    reports = []
    for _ in range(count):
        item = queue.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise RuntimeError(f"generator process failed: {_describe(item)}") from item
        reports.append(item)
    return reports


def run_echo(cfg: ClientConfig, echo: EchoConfig, server_pid: int | None) -> dict[str, Any]:
    """The echo scenario: C-connection throughput in ``procs`` processes, then C=1 latency."""
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(echo.procs + 1), ctx.Queue()
    children = _spawn(
        _echo_child, [(cfg, echo, n, barrier, queue) for n in _split(echo.connections, echo.procs)]
    )
    try:
        barrier.wait(timeout=cfg.timeout * 3 + 30)
    except threading.BrokenBarrierError:
        _collect(queue, len(children), timeout=10)  # re-raises the child's error
        raise
    time.sleep(echo.warmup)
    wall_start, cpu_start = time.perf_counter(), read_cpu_seconds(server_pid)
    time.sleep(echo.duration)
    wall, server_cpu = (
        time.perf_counter() - wall_start,
        _delta(cpu_start, read_cpu_seconds(server_pid)),
    )
    tally = EchoTally()
    for report in _collect(queue, len(children), timeout=60):
        tally.merge(report)
    for child in children:
        child.join()

    count = len(tally.latencies)
    lat = sorted(tally.latencies)
    result: dict[str, Any] = {
        "scenario": "echo",
        "connections": echo.connections,
        "connections_opened": tally.opened,
        "duration_s": round(wall, 3),
        "invocations": count,
        "throughput": round(count / wall, 1),
        "p50_ms": ms(percentile(lat, 50)),
        "p99_ms": ms(percentile(lat, 99)),
        "server_cpu_s": server_cpu,
        "server_cpu_pct": _pct(server_cpu, wall),
        "server_us_per_msg": round(server_cpu / count * 1e6, 1) if server_cpu and count else None,
        "client_cpu_pct": _pct(tally.client_cpu, wall),
        "wrong_result": tally.wrong_result,
        "missing_result": tally.missing_result,
        "stalled": tally.stalled,
        "errors": dict(tally.errors),
    }
    if echo.latency_duration > 0:
        result.update(run_async(_latency_phase(cfg, echo)))
    return result


async def _latency_phase(cfg: ClientConfig, echo: EchoConfig) -> dict[str, Any]:
    """C=1: one connection alone, closed loop, for the unloaded round-trip time."""
    conn = await open_connection(cfg)
    payload = make_payload(echo.payload_size)
    tally = await closed_loop([conn], payload, echo.latency_warmup, echo.latency_duration)
    await close_all([conn])
    await close_http_session()
    lat = sorted(tally.latencies)
    return {
        "c1_invocations": len(lat),
        "c1_p50_ms": ms(percentile(lat, 50)),
        "c1_p99_ms": ms(percentile(lat, 99)),
        "c1_errors": dict(tally.errors),
    }


# --------------------------------------------------------------------------- idle scenario


@dataclass(frozen=True)
class IdleConfig:
    """Parameters of the idle-connections scenario."""

    connections: int = 2000
    concurrency: int = 50
    settle: float = 2.0
    connect_cap: float = 60.0
    ping_interval: float = 15.0
    procs: int = 1


@dataclass
class IdleOpened:
    """A generator process's report once its share of connections is open."""

    started: float
    finished: float
    opened: int
    connect_seconds: list[float]
    errors: dict[str, int]


@dataclass
class IdleClosed:
    """A generator process's report once it has closed its connections."""

    alive: int
    close_seconds: float


async def _keepalive(conns: Sequence[HubConnection], interval: float) -> None:
    """Ping every open connection periodically, like a SignalR client's KeepAliveInterval."""
    while True:
        await asyncio.sleep(interval)
        for conn in conns:
            if not conn.closed:
                try:
                    await conn.ping()
                except Exception:
                    pass


async def _idle_share(
    cfg: ClientConfig, idle: IdleConfig, count: int, concurrency: int, queue: Any, close: Event
) -> None:
    """Open a share of the idle connections, report, hold them until told, close, report."""
    opened = await open_many(cfg, count, concurrency, idle.connect_cap)
    keepalive = asyncio.create_task(_keepalive(opened.conns, idle.ping_interval))
    queue.put(
        IdleOpened(
            opened.started,
            opened.finished,
            len(opened.conns),
            opened.connect_seconds,
            dict(opened.errors),
        )
    )
    await asyncio.get_running_loop().run_in_executor(None, close.wait)
    alive = sum(not c.closed for c in opened.conns)
    keepalive.cancel()
    begun = time.monotonic()
    await close_all(opened.conns)
    queue.put(IdleClosed(alive, time.monotonic() - begun))


def _idle_child(
    cfg: ClientConfig, idle: IdleConfig, count: int, concurrency: int, queue: Any, close: Event
) -> None:
    """Entry point of a forked generator process in the idle scenario."""
    try:
        run_async(_idle_share(cfg, idle, count, concurrency, queue, close))
    except BaseException as exc:
        queue.put(exc)
        raise


def run_idle(cfg: ClientConfig, idle: IdleConfig, server_pid: int | None) -> dict[str, Any]:
    """The idle scenario: connect rate, RSS growth per idle connection, then close all.

    RSS is read before the first connection and again after all are open and ``settle``
    seconds idle; server CPU is read around the opening burst (the per-connect cost).
    """
    procs = max(1, min(idle.procs, idle.connections))
    ctx = multiprocessing.get_context("fork")
    queue, close = ctx.Queue(), ctx.Event()
    rss_before, cpu_before = read_rss_kib(server_pid), read_cpu_seconds(server_pid)
    shares = zip(
        _split(idle.connections, procs), _split(max(idle.concurrency, procs), procs), strict=True
    )
    children = _spawn(_idle_child, [(cfg, idle, n, c, queue, close) for n, c in shares])
    opened: list[IdleOpened] = _collect(queue, procs, timeout=idle.connect_cap + cfg.timeout + 30)
    cpu_after = read_cpu_seconds(server_pid)
    time.sleep(idle.settle)
    rss_after = read_rss_kib(server_pid)
    close.set()
    closed: list[IdleClosed] = _collect(queue, procs, timeout=120)
    for child in children:
        child.join()

    count = sum(r.opened for r in opened)
    elapsed = max(r.finished for r in opened) - min(r.started for r in opened)
    server_cpu, rss_delta = _delta(cpu_before, cpu_after), _delta(rss_before, rss_after)
    connect_times = sorted(t for r in opened for t in r.connect_seconds)
    errors: Counter[str] = Counter()
    for r in opened:
        errors.update(r.errors)
    return {
        "scenario": "idle",
        "connections": idle.connections,
        "connections_opened": count,
        "connect_seconds": round(elapsed, 3),
        "connect_rate": round(count / elapsed, 1) if elapsed > 0 else None,
        "connect_p50_ms": ms(percentile(connect_times, 50)),
        "connect_p99_ms": ms(percentile(connect_times, 99)),
        "server_us_per_connect": (
            round(server_cpu / count * 1e6, 1) if server_cpu is not None and count else None
        ),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_kib_per_conn": round(rss_delta / count, 2)
        if rss_delta is not None and count
        else None,
        "alive_after_settle": sum(r.alive for r in closed),
        "close_seconds": round(max(r.close_seconds for r in closed), 3),
        "errors": dict(errors),
    }


# --------------------------------------------------------------------------- broadcast scenario


@dataclass(frozen=True)
class BroadcastConfig:
    """Parameters of the broadcast scenario."""

    receivers: int = 1000
    in_flight: int = 4
    duration: float = 10.0
    warmup: float = 2.0
    payload_size: int = 64
    group: str = "bench"
    concurrency: int = 50
    connect_cap: float = 120.0
    stall_timeout: float = 5.0
    drain: float = 10.0


class BroadcastTally:
    """Deliveries as they arrive, and the pacing of the sender on them.

    A broadcast holds one of ``in_flight`` slots from its send until every joined receiver
    has it (or ``stall_timeout`` passes), so the load adapts to the server: the rate is the
    rate at which the whole group is reached, and latency includes queueing behind the
    broadcasts ahead of it, as for a chat room under load.
    """

    def __init__(self, in_flight: int) -> None:
        self.expected = 0
        self.counts: dict[int, int] = {}
        self.outstanding: dict[int, int] = {}
        self.slots = asyncio.Semaphore(in_flight)
        self.recording = False
        self.counting_completions = False
        self.window_deliveries = 0
        self.window_broadcasts = 0
        self.window_completions = 0
        self.sent = 0
        self.completed = 0
        self.stalled = 0
        self.local: list[float] = []
        self.remote: list[float] = []
        self.last_seq: list[int] = []
        self.duplicates = 0
        self.reordered = 0
        self.foreign = 0
        self.errors: Counter[str] = Counter()

    def receiver(self, remote: bool) -> Callable[[dict[str, Any]], None]:
        """The ``on_invocation`` hook of one receiver (``remote``: not on the sender's server)."""
        index = len(self.last_seq)
        self.last_seq.append(0)
        latencies = self.remote if remote else self.local
        last_seq = self.last_seq
        clock = time.monotonic_ns

        def on_invocation(message: dict[str, Any]) -> None:
            now = clock()
            try:
                seq_text, sent_text, _ = message["arguments"][0].split("|", 2)
                seq, sent = int(seq_text), int(sent_text)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                self.foreign += 1
                return
            last = last_seq[index]
            if seq == last:
                self.duplicates += 1
                return
            if seq < last:
                self.reordered += 1
            else:
                last_seq[index] = seq
            if self.recording:
                self.window_deliveries += 1
                latencies.append((now - sent) / 1e9)
            count = self.counts.get(seq, 0) + 1
            self.counts[seq] = count
            if count >= self.expected and self.outstanding.pop(seq, None) is not None:
                self.completed += 1
                self.slots.release()

        return on_invocation

    def expire(self, now_ns: int, timeout: float) -> None:
        """Give up on broadcasts older than ``timeout`` s: free their slots, count them."""
        limit = now_ns - int(timeout * 1e9)
        for seq, sent in list(self.outstanding.items()):
            if sent < limit:
                del self.outstanding[seq]
                self.stalled += 1
                self.slots.release()

    def on_completion(self, future: asyncio.Future[Any]) -> None:
        """Count the sender's Completions in the window, and the error ones.

        A server completes ``Broadcast`` once it has written to its local members and
        published, so Completions counted between the two ``INFO`` replies line up with the
        Redis commands between them better than sends do (a send may wait behind the
        broadcasts ahead of it).
        """
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.errors[f"Broadcast {_describe(exc)}"] += 1
        elif self.counting_completions:
            self.window_completions += 1


async def _send_broadcasts(
    sender: HubConnection, tally: BroadcastTally, bc: BroadcastConfig
) -> None:
    """Send ``Broadcast`` whenever a slot is free; the payload carries seq and send time."""
    padding = make_payload(bc.payload_size)
    seq = 0
    while True:
        await tally.slots.acquire()
        seq += 1
        sent = time.monotonic_ns()
        head = f"{seq}|{sent}|"
        payload = head + padding[: max(0, bc.payload_size - len(head))]
        tally.outstanding[seq] = sent
        tally.sent += 1
        if tally.recording:
            tally.window_broadcasts += 1
        try:
            future = await sender.start_invocation("Broadcast", bc.group, payload)
        except ConnectionLost as exc:
            tally.errors[f"sender {_describe(exc)}"] += 1
            return
        future.add_done_callback(tally.on_completion)


async def _watch_stalls(tally: BroadcastTally, timeout: float) -> None:
    """Free the slots of broadcasts that never reached everyone, so the run goes on."""
    while True:
        await asyncio.sleep(min(0.25, timeout / 4))
        tally.expire(time.monotonic_ns(), timeout)


async def redis_info(
    url: str, sections: Sequence[str] = ("clients", "commandstats"), timeout: float = 5.0
) -> str:
    """``INFO <sections>`` (by default ``clients commandstats``) over a bare RESP connection.

    A hand-rolled request keeps the generator free of a Redis client and adds exactly one
    ``INFO`` (plus ``AUTH`` with a password) to the statistics it reads; both are left out
    of the command counts.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379), timeout
    )
    try:
        commands: list[list[str]] = []
        if parts.password:
            commands.append(["AUTH", *([parts.username] if parts.username else []), parts.password])
        commands.append(["INFO", *sections])
        for command in commands:
            encoded = f"*{len(command)}\r\n" + "".join(
                f"${len(arg.encode())}\r\n{arg}\r\n" for arg in command
            )
            writer.write(encoded.encode())
        await writer.drain()
        reply = b""
        for _ in commands:
            head = await asyncio.wait_for(reader.readline(), timeout)
            if head.startswith(b"-"):
                raise RuntimeError(f"redis: {head.decode().strip()}")
            if head.startswith(b"$"):
                reply = await asyncio.wait_for(reader.readexactly(int(head[1:]) + 2), timeout)
    finally:
        writer.close()
    return reply.decode()


MEASURED_MARKER = "loadgen: broadcast measured, closing"
"""Printed on stderr once the broadcast's figures are final, before the connections close."""

_CMDSTAT = re.compile(r"^cmdstat_([^:]+):calls=(\d+)", re.MULTILINE)
_CLIENTS = re.compile(r"^connected_clients:(\d+)", re.MULTILINE)
_OWN_COMMANDS = frozenset({"info", "auth"})


def command_calls(info: str) -> dict[str, int]:
    """Calls per command from an ``INFO commandstats`` reply."""
    return {name: int(calls) for name, calls in _CMDSTAT.findall(info)}


def command_delta(before: str, after: str) -> dict[str, int]:
    """Commands other clients ran between two samples (the sampler's own are left out)."""
    start, end = command_calls(before), command_calls(after)
    delta = {name: calls - start.get(name, 0) for name, calls in end.items()}
    return {k: v for k, v in sorted(delta.items()) if v > 0 and k not in _OWN_COMMANDS}


def _sample_cpu(pids: Sequence[int | None]) -> list[float | None]:
    """User+system CPU seconds of each server process."""
    return [read_cpu_seconds(pid) for pid in pids]


async def _broadcast(
    cfgs: Sequence[ClientConfig],
    sender_cfg: ClientConfig,
    bc: BroadcastConfig,
    pids: Sequence[int | None],
    redis_url: str | None,
    redis_pid: int | None,
) -> dict[str, Any]:
    """Open the sender and the receivers, run the paced broadcast, measure the window.

    Besides the servers' CPU it samples the whole machine's: on a shared box, CPU taken by
    other processes (``other_cpu_pct``) explains servers that are slow without being busy.
    """
    tally = BroadcastTally(bc.in_flight)
    sender = await open_connection(sender_cfg)

    def joiner(remote: bool) -> Callable[[HubConnection], Awaitable[None]]:
        async def join(conn: HubConnection) -> None:
            conn.on_invocation = tally.receiver(remote)
            await conn.invoke("Join", bc.group)

        return join

    shares = zip(cfgs, _split(bc.receivers, len(cfgs)), strict=True)
    started = time.monotonic()
    joined = await asyncio.gather(
        *(
            open_many(cfg, share, bc.concurrency, bc.connect_cap, joiner(remote=i > 0))
            for i, (cfg, share) in enumerate(shares)
        )
    )
    connect_seconds = time.monotonic() - started
    receivers = [c for r in joined for c in r.conns]
    tally.expected = len(receivers)
    connect_errors: Counter[str] = Counter()
    for r in joined:
        connect_errors.update(r.errors)

    result: dict[str, Any] = {
        "scenario": "broadcast",
        "receivers": bc.receivers,
        "receivers_joined": len(receivers),
        "receivers_per_server": [len(r.conns) for r in joined],
        "connect_seconds": round(connect_seconds, 3),
        "connect_rate": round(len(receivers) / connect_seconds, 1) if connect_seconds else None,
        "connect_errors": dict(connect_errors),
        "in_flight": bc.in_flight,
        "payload_size": bc.payload_size,
    }
    if not receivers:
        await close_all([sender])
        result["errors"] = {"no receiver joined": 1}
        return result

    sending = asyncio.create_task(_send_broadcasts(sender, tally, bc))
    watchdog = asyncio.create_task(_watch_stalls(tally, bc.stall_timeout))
    await asyncio.sleep(bc.warmup)
    info_before = await redis_info(redis_url) if redis_url else None
    tally.counting_completions = True
    cpu_before, client_before = _sample_cpu(pids), time.process_time()
    redis_before, machine_before = read_cpu_seconds(redis_pid), read_machine_cpu()
    begun = time.monotonic()
    tally.recording = True
    await asyncio.sleep(bc.duration)
    tally.recording = False
    wall = time.monotonic() - begun
    cpu_after, client_cpu = _sample_cpu(pids), time.process_time() - client_before
    redis_after, machine_after = read_cpu_seconds(redis_pid), read_machine_cpu()
    info_after = await redis_info(redis_url) if redis_url else None
    tally.counting_completions = False

    sending.cancel()
    deadline = time.monotonic() + bc.drain
    while tally.outstanding and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    watchdog.cancel()
    tally.expire(time.monotonic_ns(), 0.0)
    alive = sum(not c.closed for c in receivers)
    # run.py / broadcast.py split the servers' logs here: what follows is teardown.
    print(MEASURED_MARKER, file=sys.stderr, flush=True)
    try:
        await asyncio.wait_for(close_all([sender, *receivers]), 15)
    except TimeoutError:
        tally.errors["close took > 15 s"] += 1

    deliveries, broadcasts = tally.window_deliveries, tally.window_broadcasts
    both = sorted(tally.local + tally.remote)
    local, remote = sorted(tally.local), sorted(tally.remote)
    server_cpu = [_delta(b, a) for b, a in zip(cpu_before, cpu_after, strict=True)]
    cpu_total = None if None in server_cpu else round(sum(c or 0.0 for c in server_cpu), 3)
    redis_cpu = _delta(redis_before, redis_after)
    busy = machine_after[0] - machine_before[0]
    cores = (machine_after[1] - machine_before[1]) / wall if wall > 0 else 0.0
    ours = (cpu_total or 0.0) + client_cpu + (redis_cpu or 0.0)
    result.update(
        {
            "duration_s": round(wall, 3),
            "deliveries": deliveries,
            "deliveries_per_s": round(deliveries / wall, 1),
            "broadcasts": broadcasts,
            "broadcasts_per_s": round(broadcasts / wall, 2),
            "p50_ms": ms(percentile(both, 50)),
            "p99_ms": ms(percentile(both, 99)),
            "local_p50_ms": ms(percentile(local, 50)),
            "remote_p50_ms": ms(percentile(remote, 50)),
            "local_deliveries": len(local),
            "remote_deliveries": len(remote),
            "server_cpu_s": server_cpu,
            "server_cpu_pct": [_pct(c, wall) for c in server_cpu],
            "server_us_per_delivery": (
                round(cpu_total / deliveries * 1e6, 1) if cpu_total and deliveries else None
            ),
            "client_cpu_pct": _pct(client_cpu, wall),
            "redis_cpu_pct": _pct(redis_cpu, wall),
            "machine_busy_pct": round(100 * busy / (cores * wall), 1) if cores else None,
            "other_cpu_pct": _pct(max(0.0, busy - ours), wall),
            "cores": round(cores, 1),
            "completions": tally.window_completions,
            "sent": tally.sent,
            "completed": tally.completed,
            "stalled_broadcasts": tally.stalled,
            "duplicates": tally.duplicates,
            "reordered": tally.reordered,
            "foreign": tally.foreign,
            "receivers_alive_at_end": alive,
            "errors": dict(tally.errors),
        }
    )
    if info_before is not None and info_after is not None:
        delta = command_delta(info_before, info_after)
        total = sum(delta.values())
        clients = _CLIENTS.search(info_after)
        completions = tally.window_completions
        result.update(
            {
                "redis_commands": delta,
                "redis_commands_per_broadcast": (
                    round(total / completions, 2) if completions else None
                ),
                "redis_publish_per_broadcast": (
                    round(delta.get("publish", 0) / completions, 2) if completions else None
                ),
                "redis_clients": int(clients.group(1)) if clients else None,
            }
        )
    return result


def run_broadcast(
    cfgs: Sequence[ClientConfig],
    sender_cfg: ClientConfig,
    bc: BroadcastConfig,
    pids: Sequence[int | None],
    redis_url: str | None,
    redis_pid: int | None = None,
) -> dict[str, Any]:
    """The broadcast scenario: receivers spread over ``cfgs``, the sender on ``sender_cfg``."""
    result: dict[str, Any] = run_async(_broadcast(cfgs, sender_cfg, bc, pids, redis_url, redis_pid))
    return result


# --------------------------------------------------------------------------- helpers / CLI


def _split(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` near-equal shares (the first ones one larger)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _delta(before: float | None, after: float | None) -> float | None:
    """Difference of two optional samples (None when the server pid was not given)."""
    return None if before is None or after is None else round(after - before, 3)


def _pct(cpu: float | None, wall: float) -> float | None:
    """CPU seconds over a wall-clock window as a percentage of one core."""
    return None if cpu is None or wall <= 0 else round(100 * cpu / wall, 1)


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface: one sub-command per scenario."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="scenario", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", required=True, help="ws://host:port/hub-path")
    common.add_argument("--negotiate", action="store_true", help="POST {hub}/negotiate first")
    common.add_argument("--server-pid", type=int, help="server pid for CPU/RSS sampling")
    common.add_argument("--client", choices=["picows", "websockets"], default=default_client())
    common.add_argument("--timeout", type=float, default=20.0, help="per-connection timeout (s)")
    common.add_argument("--procs", type=int, default=1, help="generator processes (fork)")

    e = sub.add_parser("echo", parents=[common], help="closed-loop Echo throughput + latency")
    e.add_argument("-c", "--connections", type=int, default=50)
    e.add_argument("-d", "--duration", type=float, default=10.0)
    e.add_argument("--warmup", type=float, default=2.0)
    e.add_argument("--latency-duration", type=float, default=3.0, help="C=1 phase; 0 = skip")
    e.add_argument("--payload-size", type=int, default=64)
    e.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default=WEBSOCKETS,
        help="SSE and long polling always negotiate; --client applies to websockets only",
    )

    i = sub.add_parser("idle", parents=[common], help="connect rate + RSS per idle connection")
    i.add_argument("-k", "--connections", type=int, default=2000)
    i.add_argument("--concurrency", type=int, default=50, help="handshakes in flight")
    i.add_argument("--settle", type=float, default=2.0, help="idle time before sampling RSS")
    i.add_argument("--connect-cap", type=float, default=60.0, help="stop opening after (s)")

    b = sub.add_parser(
        "broadcast",
        parents=[common],
        help="group fan-out over two servers: deliveries/s, latency, Redis commands",
        description=(
            "--url is server A (the sender and half the receivers), --remote-url server B "
            "(the other half; omit it for a single server). --procs is ignored: one process "
            "must see every delivery to pace the sender."
        ),
    )
    b.add_argument("--remote-url", help="ws://host:port/path of server B's receivers")
    b.add_argument("--sender-url", help="the sender's URL (default: --url)")
    b.add_argument("--remote-pid", type=int, help="server B's pid for CPU sampling")
    b.add_argument("--redis-url", help="redis://host:port for INFO commandstats")
    b.add_argument("--redis-pid", type=int, help="redis-server's pid for CPU sampling")
    b.add_argument("-n", "--receivers", type=int, default=1000)
    b.add_argument("-k", "--in-flight", type=int, default=4, help="broadcasts in flight")
    b.add_argument("-d", "--duration", type=float, default=10.0)
    b.add_argument("--warmup", type=float, default=2.0)
    b.add_argument("--payload-size", type=int, default=64)
    b.add_argument("--group", default="bench")
    b.add_argument("--concurrency", type=int, default=50, help="handshakes in flight per server")
    b.add_argument("--connect-cap", type=float, default=120.0, help="stop opening after (s)")
    b.add_argument("--stall-timeout", type=float, default=5.0, help="give up on a broadcast (s)")
    return parser


def run_scenario(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected scenario and attach what the generator itself ran on."""
    transport = getattr(args, "transport", WEBSOCKETS)
    cfg = ClientConfig(
        Endpoint.parse(args.url), args.negotiate, args.client, args.timeout, transport
    )
    procs = max(1, args.procs)
    if args.scenario == "echo":
        echo = EchoConfig(
            connections=args.connections,
            duration=args.duration,
            warmup=args.warmup,
            latency_duration=args.latency_duration,
            payload_size=args.payload_size,
            procs=min(procs, args.connections),
        )
        result = run_echo(cfg, echo, args.server_pid)
    elif args.scenario == "broadcast":
        procs = 1
        cfgs = [cfg]
        if args.remote_url:
            cfgs.append(dataclasses.replace(cfg, endpoint=Endpoint.parse(args.remote_url)))
        sender = cfg
        if args.sender_url:
            sender = dataclasses.replace(cfg, endpoint=Endpoint.parse(args.sender_url))
        bc = BroadcastConfig(
            receivers=args.receivers,
            in_flight=args.in_flight,
            duration=args.duration,
            warmup=args.warmup,
            payload_size=args.payload_size,
            group=args.group,
            concurrency=args.concurrency,
            connect_cap=args.connect_cap,
            stall_timeout=args.stall_timeout,
        )
        pids = [args.server_pid] + ([args.remote_pid] if args.remote_url else [])
        result = run_broadcast(cfgs, sender, bc, pids, args.redis_url, args.redis_pid)
    else:
        idle = IdleConfig(
            connections=args.connections,
            concurrency=args.concurrency,
            settle=args.settle,
            connect_cap=args.connect_cap,
            procs=procs,
        )
        result = run_idle(cfg, idle, args.server_pid)
    result["generator"] = {
        "transport": transport,
        "client": args.client if transport == WEBSOCKETS else "aiohttp",
        "loop": loop_name(),
        "procs": procs,
        "negotiate": args.negotiate or transport != WEBSOCKETS,
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Print one JSON object with the scenario's figures on stdout."""
    args = build_parser().parse_args(argv)
    raise_nofile_limit()
    json.dump(run_scenario(args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
