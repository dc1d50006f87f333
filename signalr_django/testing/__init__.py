"""Test hubs in-process: a client without a server, and fakes for one hub method.

`HubCommunicator` connects to a hub the way a client does, minus the network: it speaks
the hub protocol to the same handshake, dispatch and lifetime code a WebSocket connection
goes through, so filters, `on_connected`/`on_disconnected`, groups, users and client
results behave as in production. Several communicators on one hub reach each other.

`make_hub` builds one hub instance whose `clients` and `groups` record what a method does
with them, for unit tests of a single method without any connection at all.

See docs/testing.md for examples with pytest-asyncio and pytest-django.
"""

from __future__ import annotations

from .communicator import (
    DEFAULT_TIMEOUT,
    ClientInvocation,
    ConnectionClosed,
    ConnectionRejected,
    HubCommunicator,
    HubInvocationError,
    StreamReader,
)
from .fakes import (
    FakeClientProxy,
    FakeClients,
    FakeGroups,
    SentMessage,
    call_method,
    fake_clients,
    fake_groups,
    make_hub,
)
from .state import close_sync_connections, reset_hub_state
from .uploads import ClientStream

__all__ = [
    "DEFAULT_TIMEOUT",
    "ClientInvocation",
    "ClientStream",
    "ConnectionClosed",
    "ConnectionRejected",
    "FakeClientProxy",
    "FakeClients",
    "FakeGroups",
    "HubCommunicator",
    "HubInvocationError",
    "SentMessage",
    "StreamReader",
    "call_method",
    "close_sync_connections",
    "fake_clients",
    "fake_groups",
    "make_hub",
    "reset_hub_state",
]
