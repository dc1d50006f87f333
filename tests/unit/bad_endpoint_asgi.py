"""An asgi.py giving map_hub a value out of range (what signalr.E030 reports)."""

from __future__ import annotations

from channels.routing import URLRouter

from signalr_django import Hub, map_hub


class FineHub(Hub):
    async def echo(self, value: str) -> str:
        return value


application = URLRouter([map_hub("hubs/fine", FineHub, KEEP_ALIVE_INTERVAL=-1)])
