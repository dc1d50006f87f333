"""A hub message serialised at most once per protocol, however many recipients it has."""

from __future__ import annotations

import logging
from typing import Any

from ..protocol import HubProtocol, Invocation, Payload

logger = logging.getLogger(__name__)


class SerializedMessage:
    """An Invocation to many connections; `payload(protocol)` caches the framed record.

    Fan-out is the hot path: a broadcast to 5,000 JSON connections costs one `json.dumps`.
    """

    __slots__ = ("_cache", "_prepared", "arguments", "target")

    def __init__(self, target: str, arguments: list[Any]) -> None:
        self.target = target
        self.arguments = arguments
        self._cache: dict[str, Payload] = {}
        self._prepared: dict[str, Any] | None = None

    def payload(self, protocol: HubProtocol) -> Payload:
        """The framed record for `protocol`, serialised on first use."""
        cached = self._cache.get(protocol.name)
        if cached is None:
            cached = protocol.encode(Invocation(self.target, self.arguments))
            self._cache[protocol.name] = cached
        return cached

    def prepared(self, protocol: HubProtocol, factory: Any) -> Any:
        """The record as one prepared WebSocket frame (autobahn), made once per protocol."""
        cache = self._prepared
        if cache is None:
            cache = self._prepared = {}
        frame = cache.get(protocol.name)
        if frame is None:
            payload = self.payload(protocol)
            if isinstance(payload, str):
                frame = factory.prepareMessage(payload.encode("utf-8"), False)
            else:
                frame = factory.prepareMessage(payload, True)
            cache[protocol.name] = frame
        return frame

    def all_payloads(self) -> dict[str, Payload]:
        """Records for every registered protocol (for other workers, whose clients vary)."""
        from ..protocol import registered_protocols

        for protocol in registered_protocols():
            if protocol.name not in self._cache:
                try:
                    self.payload(protocol)
                except (TypeError, ValueError, OverflowError):
                    logger.warning(
                        "Cannot serialise %s for the %s protocol", self.target, protocol.name
                    )
        return self._cache

    def preload(self, payloads: dict[str, Payload]) -> None:
        """Adopt records already serialised elsewhere (received from another worker)."""
        self._cache.update(payloads)
