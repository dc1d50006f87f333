"""A hub message serialised at most once per protocol, however many recipients it has."""

from __future__ import annotations

from typing import Any

from ..protocol import HubProtocol, Invocation, Payload


class SerializedMessage:
    """An Invocation to many connections; `payload(protocol)` caches the framed record.

    Fan-out is the hot path: a broadcast to 5,000 JSON connections costs one `json.dumps`.
    """

    __slots__ = ("_cache", "arguments", "target")

    def __init__(self, target: str, arguments: list[Any]) -> None:
        self.target = target
        self.arguments = arguments
        self._cache: dict[str, Payload] = {}

    def payload(self, protocol: HubProtocol) -> Payload:
        """The framed record for `protocol`, serialised on first use."""
        cached = self._cache.get(protocol.name)
        if cached is None:
            cached = protocol.encode(Invocation(self.target, self.arguments))
            self._cache[protocol.name] = cached
        return cached

    def preload(self, payloads: dict[str, Payload]) -> None:
        """Adopt records already serialised elsewhere (received from another worker)."""
        self._cache.update(payloads)
