"""Stateful reconnect: a connection survives a dropped transport without losing messages.

Both sides number the messages that matter (Invocation, StreamItem, Completion,
StreamInvocation, CancelInvocation) from 1, keep what they sent until the peer acknowledges
it, and after a reconnect send a Sequence message followed by everything unacknowledged.
The receiver skips what it already processed, so each message is handled exactly once.

Nothing here ever waits. The replay buffer counts toward the connection's outbound cap
(OUTBOUND_BUFFER_LIMIT, enforced by `HubConnection`): a client that never acknowledges is
closed there, rather than making its senders wait as ASP.NET Core does. An Ack for a
message that was never sent is a protocol violation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..exceptions import ProtocolError
from ..protocol import Payload

Writer = Callable[[Payload], Awaitable[None]]


class MessageBuffer:
    """Sequence numbers, the replay buffer and duplicate detection of one connection."""

    __slots__ = (
        "_current_receiving",
        "_last_ack_sent",
        "buffer",
        "buffered_bytes",
        "latest_received",
        "total_sent",
    )

    def __init__(self) -> None:
        self.total_sent = 0
        self.buffer: deque[tuple[int, Payload]] = deque()
        self.buffered_bytes = 0
        self.latest_received = 0
        self._current_receiving = 0
        self._last_ack_sent = 0

    # -- outbound ------------------------------------------------------------------------

    def track(self, payload: Payload) -> None:
        """Number and keep a trackable message until the peer acknowledges it."""
        self.total_sent += 1
        self.buffer.append((self.total_sent, payload))
        self.buffered_bytes += len(payload)

    def ack(self, sequence_id: int) -> None:
        """The peer processed everything up to `sequence_id`: drop it from the buffer.

        Raises ProtocolError for an id beyond the last message sent: a client cannot have
        processed what it was never given, and accepting it would let it empty the buffer
        of messages it will need after a reconnect.
        """
        if sequence_id > self.total_sent:
            raise ProtocolError("Ack for a sequence ID that was never sent.")
        buffer = self.buffer
        while buffer and buffer[0][0] <= sequence_id:
            _, payload = buffer.popleft()
            self.buffered_bytes -= len(payload)

    def clear(self) -> None:
        """The connection ended: nothing will be replayed."""
        self.buffer.clear()
        self.buffered_bytes = 0

    def replay_start(self) -> int:
        """The Sequence id to announce on reconnect: the first unacknowledged message."""
        return self.buffer[0][0] if self.buffer else self.total_sent + 1

    def unacked(self) -> list[Payload]:
        """Messages to send again after a reconnect, oldest first."""
        return [payload for _, payload in self.buffer]

    # -- moving to another worker ------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """The whole state, as plain values a channel layer carries (see `handoff`)."""
        return {
            "t": self.total_sent,
            "b": [[sequence_id, payload] for sequence_id, payload in self.buffer],
            "lr": self.latest_received,
            "cr": self._current_receiving,
            "la": self._last_ack_sent,
        }

    @classmethod
    def restore(cls, state: dict[str, Any], later: MessageBuffer) -> MessageBuffer:
        """The buffer `state` (from `export`) describes, followed by what `later` tracked.

        `later` numbered its messages from 1 while the state was on its way; they come
        after every message of `state`, so they are numbered on from its last one.
        """
        buffer = cls()
        buffer.total_sent = int(state["t"])
        for sequence_id, payload in state["b"]:
            buffer.buffer.append((int(sequence_id), payload))
            buffer.buffered_bytes += len(payload)
        for _, payload in later.buffer:
            buffer.track(payload)
        buffer.latest_received = int(state["lr"])
        buffer._current_receiving = int(state["cr"])
        buffer._last_ack_sent = int(state["la"])
        return buffer

    # -- inbound -------------------------------------------------------------------------

    def should_process(self) -> bool:
        """Count one inbound trackable message; False when it is a replayed duplicate."""
        self._current_receiving += 1
        if self._current_receiving <= self.latest_received:
            return False
        self.latest_received = self._current_receiving
        return True

    def sequence(self, sequence_id: int) -> None:
        """The peer will resend from `sequence_id`."""
        if sequence_id > self.latest_received + 1:
            raise ProtocolError("Sequence ID greater than amount of messages we've received.")
        self._current_receiving = sequence_id - 1

    def ack_due(self) -> int | None:
        """The id to acknowledge now, or None when nothing new arrived since the last Ack."""
        if self.latest_received > self._last_ack_sent:
            self._last_ack_sent = self.latest_received
            return self.latest_received
        return None
