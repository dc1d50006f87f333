"""The package's hub under test: the smallest possible hub, one echo method."""

from __future__ import annotations

from signalr_django import Hub


class EchoHub(Hub):
    """Invoked as target ``Echo`` (hub method names match case-insensitively)."""

    async def echo(self, message: str) -> str:
        """Return the argument unchanged: the round trip measures the hub machinery only."""
        return message
