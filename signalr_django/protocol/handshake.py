"""The handshake that opens every connection (protocol layer: pure).

The request and the response are always JSON text followed by 0x1E, whatever hub protocol
the client picks. Bytes after the request's separator are the first hub messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..exceptions import HandshakeError
from .framing import RECORD_SEPARATOR

HANDSHAKE_OK = "{}" + RECORD_SEPARATOR
GENERIC_HANDSHAKE_ERROR = "An unexpected error occurred during connection handshake."
HANDSHAKE_CANCELED = "Handshake was canceled."


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """What the client asked for."""

    protocol: str
    version: int


def handshake_error(message: str) -> str:
    """The error response record: `{"error":"..."}` + 0x1E."""
    return json.dumps({"error": message}, separators=(",", ":")) + RECORD_SEPARATOR


def parse_handshake(record: str, detailed: bool = False) -> HandshakeRequest:
    """Parse the handshake record (without its separator).

    Raises HandshakeError with the exact text the client must receive.
    """

    def fail(detail: str) -> HandshakeError:
        if detailed:
            return HandshakeError(f"{GENERIC_HANDSHAKE_ERROR} InvalidDataException: {detail}")
        return HandshakeError(GENERIC_HANDSHAKE_ERROR)

    try:
        obj = json.loads(record)
    except (ValueError, RecursionError):
        raise fail("Error reading JSON.") from None
    if type(obj) is not dict:
        raise fail("Error reading JSON.")
    protocol = obj.get("protocol")
    if protocol is None:
        raise fail(f"Missing required property 'protocol'. Message content: {record}")
    version = obj.get("version")
    if version is None:
        raise fail(f"Missing required property 'version'. Message content: {record}")
    if type(protocol) is not str:
        raise fail("Expected 'protocol' to be of type String.")
    if type(version) is not int:
        raise fail("Expected 'version' to be of type Integer.")
    return HandshakeRequest(protocol, version)
