"""Stateful reconnect's replay buffer under any order of sends, reads, Acks, drops and resumes.

A hypothesis state machine drives a real `HubConnection` with stateful reconnect against a
model of the official client (its sequence counting and duplicate skipping). Whatever the
order: the memory held for the client never exceeds OUTBOUND_BUFFER_LIMIT by more than the
one message that crosses it (the connection is closed then), a well-behaved client never
loses or duplicates a message, and an Ack for a message never sent is a protocol violation.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from signalr_django.conf import DEFAULTS
from signalr_django.core.connection import HubConnection
from signalr_django.core.reconnect import MessageBuffer
from signalr_django.exceptions import ProtocolError
from signalr_django.protocol import Invocation, JsonHubProtocol, Sequence
from signalr_django.server import Outbound

LIMIT = 4096


class Socket(Outbound):
    """One transport: records the client has not read yet count as pending bytes."""

    def __init__(self) -> None:
        self.unread: list[str] = []

    def write(self, payload: Any) -> int:
        self.unread.append(payload)
        return self.pending()

    def pending(self) -> int:
        return sum(len(p) for p in self.unread)


class ReplayMachine(RuleBasedStateMachine):
    """Server connection + a model client that follows the official client's rules."""

    def __init__(self) -> None:
        super().__init__()
        options = DEFAULTS.with_overrides({"OUTBOUND_BUFFER_LIMIT": LIMIT}, "test")
        self.socket = Socket()
        self.connection = HubConnection(
            "c", object, options, JsonHubProtocol(), {}, "WebSockets", self.socket
        )
        self.connection.reconnect = MessageBuffer()
        self.sent = 0  # messages the hub sent, numbered from 1
        self.processed: list[int] = []  # what the client handled, in order
        self.next_receiving = 1  # the client's counter for the next trackable message
        self.waiting_for_sequence = False
        self.max_message = 0

    @property
    def buffer(self) -> MessageBuffer:
        assert self.connection.reconnect is not None
        return self.connection.reconnect

    @precondition(lambda self: not self.connection.aborted)
    @rule(size=st.integers(min_value=0, max_value=600))
    def hub_sends(self, size: int) -> None:
        """The hub sends one message (a numbered Invocation)."""
        self.sent += 1
        payload = JsonHubProtocol().encode(Invocation("M", [self.sent, "x" * size]))
        self.max_message = max(self.max_message, len(payload))
        self.connection.write(payload)
        if not self.connection.aborted:
            assert self.held() <= LIMIT  # a write never leaves more than the cap held

    def held(self) -> int:
        """Bytes the server holds for this client: replay buffer plus unsent records."""
        pending = 0 if self.connection.detached else self.socket.pending()
        return self.buffer.buffered_bytes + pending

    @precondition(lambda self: self.connection.aborted)
    @rule()
    def sends_after_the_close_are_dropped(self) -> None:
        """Once closed for being behind, nothing more is kept for the client."""
        before = self.buffer.buffered_bytes
        self.connection.write(JsonHubProtocol().encode(Invocation("M", [0, "late"])))
        assert self.buffer.buffered_bytes == before

    @precondition(lambda self: not self.connection.detached)
    @rule(count=st.integers(min_value=1, max_value=5))
    def client_reads(self, count: int) -> None:
        """The client reads up to `count` records from the current socket."""
        for _ in range(min(count, len(self.socket.unread))):
            record = json.loads(self.socket.unread.pop(0).rstrip("\x1e"))
            if record["type"] == 9:  # Sequence
                assert self.waiting_for_sequence
                # The server resumes at its first unacknowledged message: never past what
                # the client processed (else messages would be skipped).
                assert record["sequenceId"] <= len(self.processed) + 1
                self.next_receiving = record["sequenceId"]
                self.waiting_for_sequence = False
                continue
            if record["type"] != 1:
                continue  # Close
            assert not self.waiting_for_sequence
            if self.next_receiving <= len(self.processed):
                self.next_receiving += 1  # a replayed duplicate: skipped
                continue
            self.next_receiving += 1
            self.processed.append(record["arguments"][0])

    @precondition(lambda self: not self.connection.detached and not self.connection.aborted)
    @rule()
    def client_acks(self) -> None:
        """The client acknowledges everything it processed."""
        if self.processed:
            self.buffer.ack(len(self.processed))

    @precondition(lambda self: not self.connection.aborted)
    @rule(beyond=st.integers(min_value=1, max_value=10**6))
    def hostile_ack_is_refused(self, beyond: int) -> None:
        """An Ack past the last message sent is a protocol violation; nothing is dropped."""
        before = list(self.buffer.buffer)
        with pytest.raises(ProtocolError):
            self.buffer.ack(self.buffer.total_sent + beyond)
        assert list(self.buffer.buffer) == before

    @precondition(lambda self: not self.connection.detached and not self.connection.aborted)
    @rule()
    def socket_drops(self) -> None:
        """The transport drops: what the client had not read is lost with it."""
        self.socket.unread.clear()
        self.connection.detached = True

    @precondition(lambda self: self.connection.detached and not self.connection.aborted)
    @rule()
    def client_resumes(self) -> None:
        """A new socket: Sequence, then every unacknowledged message (as the transport does)."""
        self.socket = Socket()
        self.socket.write(JsonHubProtocol().encode(Sequence(self.buffer.replay_start())))
        for _, payload in self.buffer.buffer:
            self.socket.write(payload)
        self.connection.attach(self.socket)
        self.waiting_for_sequence = True

    @invariant()
    def memory_stays_under_the_cap(self) -> None:
        """Held bytes stay bounded: the replay buffer by the cap plus the message that
        crossed it (the connection is closed then, allowing a reconnect); a resume may hold
        the replay buffer twice while the new socket sends it."""
        if self.connection.aborted:
            assert self.connection.close_message is not None
            assert self.connection.close_message.allow_reconnect
        assert self.buffer.buffered_bytes <= LIMIT + self.max_message
        assert self.held() <= 2 * (LIMIT + self.max_message)

    @invariant()
    def nothing_lost_or_duplicated(self) -> None:
        """The client handled messages 1..n exactly once each, in order."""
        assert self.processed == list(range(1, len(self.processed) + 1))


ReplayMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_replay_buffer = ReplayMachine.TestCase
