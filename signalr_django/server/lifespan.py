"""`lifespan`: the ASGI lifespan application for servers other than Daphne (uvicorn).

Daphne does not speak the lifespan protocol; its start and shutdown hooks are the
reactor's (`server/daphne.py`). Servers that do send `lifespan.startup` before serving
and `lifespan.shutdown` after they closed every connection. Route it in the project's
`asgi.py`:

    application = ProtocolTypeRouter({
        "http": ...,
        "websocket": ...,
        "lifespan": signalr_django.lifespan,
    })

At start-up it begins the worker's load reports (with `WORKER_URL`) and installs the
graceful drain before the server's own SIGTERM/SIGINT handling (`core/shutdown.py`); at
shutdown it stops both and withdraws the load report.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def startup() -> None:
    """What a server start needs: load reports and the signal drain."""
    from ..core import load, reach, shutdown
    from ..presence import registry

    reach.mark_serving()
    load.start()
    registry.start()
    if not shutdown.install_signal_drain():
        logger.info(
            "No SIGTERM/SIGINT handler of the server to run after the graceful drain; "
            "connections will see the server's own close on shutdown"
        )


async def shutdown() -> None:
    """The server closed every connection: stop the latecomer sweep and the load reports."""
    from ..core import load
    from ..core import shutdown as drain
    from ..presence import registry

    await drain.stop_signal_drain()
    await load.stop()
    await registry.stop()


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI app for the `lifespan` scope (other scopes are refused with an error)."""
    if scope["type"] != "lifespan":
        raise ValueError(f"signalr_django.lifespan serves lifespan scopes, not {scope['type']!r}")
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup()
            except Exception as error:
                logger.exception("SignalR start-up failed")
                await send({"type": "lifespan.startup.failed", "message": str(error)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await shutdown()
            except Exception as error:
                logger.exception("SignalR shutdown failed")
                await send({"type": "lifespan.shutdown.failed", "message": str(error)})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return
