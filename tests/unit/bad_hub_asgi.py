"""An asgi.py mapping a hub whose `options` has a misspelt key (what signalr.E030 reports)."""

from __future__ import annotations

from channels.routing import URLRouter

from signalr_django import Hub, map_hub


class MisspeltHub(Hub):
    options = {"KEEP_ALIVE_INTERVALL": 5}

    async def echo(self, value: str) -> str:
        return value


application = URLRouter([map_hub("hubs/misspelt", MisspeltHub)])
