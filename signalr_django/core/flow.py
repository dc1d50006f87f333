"""Flow control against the transport: bounded outbound buffers and paused reads.

Daphne accepts every outbound frame at once and queues it in Twisted's transport, and it
reads every inbound frame into an unbounded queue; ASGI has no backpressure. A client that
never reads would make the server's memory grow without limit, and a client that floods
invocations would fill the queue behind a busy hub method. Two mechanisms bound both:

- the bytes waiting in the transport are checked after each write; past
  `OUTBOUND_BUFFER_LIMIT` the connection is closed with an error that allows reconnecting
  (the client then knows it missed messages, rather than silently losing them);
- while the read loop waits (for an invocation slot, a full upload stream, a full replay
  buffer), the transport stops reading from the socket, so TCP pushes back on the client.
"""

from __future__ import annotations

import functools
from typing import Any, cast


def server_protocol(send: Any) -> Any:
    """The Daphne protocol object behind an ASGI `send`, or None under other servers.

    Daphne passes `functools.partial(server.handle_reply, protocol)`; Channels' session
    middleware wraps it (`real_send`) without touching WebSocket or body messages, so it
    is looked through.
    """
    for _ in range(8):
        if isinstance(send, functools.partial) and send.args:
            return send.args[0]
        inner = getattr(getattr(send, "__self__", None), "real_send", None)
        if inner is None:
            return None
        send = inner
    return None


def transport_of(protocol: Any) -> Any:
    """The Twisted transport under a Daphne protocol (WebSocket or HTTP), or None."""
    transport = getattr(protocol, "transport", None)
    if transport is None:
        channel = getattr(protocol, "channel", None)
        transport = getattr(channel, "transport", None)
    return transport


def backlog(transport: Any) -> int:
    """Bytes a Twisted transport holds that the peer has not taken yet."""
    if transport is None:
        return 0
    try:
        data = len(transport.dataBuffer) - transport.offset
        return int(data + transport._tempDataLen)
    except AttributeError:
        return 0


def pause_reading(transport: Any) -> bool:
    """Stop reading from the socket; True when it was possible."""
    pause = getattr(transport, "pauseProducing", None)
    if pause is None:
        return False
    pause()
    return True


def resume_reading(transport: Any) -> None:
    """Read from the socket again."""
    resume = getattr(transport, "resumeProducing", None)
    if resume is not None:
        resume()


def direct_writer(transport: Any) -> Any:
    """A writer that sends on the socket at once when Twisted has nothing queued.

    Twisted's `transport.write` always queues, registers the socket with the event loop and
    writes on the next loop iteration: two epoll calls and a loop pass per message. For a
    broadcast to thousands of connections that is most of the cost, so, as asyncio's own
    transports do, the frame is sent straight away when nothing is waiting, and only the
    part the kernel did not take goes through Twisted. Plain TCP only (a TLS transport
    must encrypt, so it keeps Twisted's path); anything unusual also falls back to it.
    """
    try:
        from twisted.internet import tcp
    except ImportError:  # pragma: no cover - Twisted comes with Daphne
        return None
    if type(transport) is not tcp.Server:
        return None
    transport = cast(Any, transport)  # Twisted's private buffer attributes are read below
    sock = transport.socket
    send = sock.send

    def write(data: bytes) -> None:
        if (
            transport._tempDataBuffer
            or len(transport.dataBuffer) > transport.offset
            or not transport.connected
            or transport.disconnecting
            or transport._writeDisconnected
        ):
            transport.write(data)
            return
        try:
            sent = send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            transport.write(data)  # let Twisted notice and report the broken connection
            return
        if sent < len(data):
            transport.write(data[sent:])

    return write
