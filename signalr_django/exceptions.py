"""The exception hierarchy (foundation layer: imports nothing of the package)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class HubException(Exception):
    """An error whose message is always sent to the client.

    Raise it from a hub method to fail the invocation with a message the caller may read;
    any other exception reaches the client only when detailed errors are enabled.
    """


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid hub protocol message; the connection closes."""


class HandshakeError(Exception):
    """The handshake failed; the message is the exact text sent back to the client."""


class BindingError(Exception):
    """Invocation arguments do not fit the hub method; only that invocation fails."""


class MessageTooLargeError(ProtocolError):
    """A single inbound message exceeded the maximum receive size."""


class HubConfigurationError(ImproperlyConfigured):
    """A hub class or setting is invalid (raised at start-up, never on the wire).

    An `ImproperlyConfigured`, so code that handles Django's configuration errors
    handles it too.
    """


class ConnectionNotFoundError(Exception):
    """A send or group change addressed a connection that does not exist."""


class BackplaneError(Exception):
    """The channel layer could not carry a message to other workers (Redis unreachable).

    Deliveries to connections of the sending process have already happened when it is
    raised; what failed is the part that had to cross to other workers.
    """


class LimitExceededError(HubException):
    """A per-connection cap was reached: the call that would exceed it fails, nothing else.

    A HubException, so the caller's Completion always carries the message (which names the
    setting to raise); the connection and every other connection carry on.
    """

    def __init__(self, what: str, setting: str, limit: int) -> None:
        super().__init__(f"{what} (limit {limit}, setting {setting}).")
        self.what = what
        self.setting = setting
        self.limit = limit
