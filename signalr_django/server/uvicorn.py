"""The uvicorn adapter: the one module that reads uvicorn internals.

uvicorn closes its listening sockets only in its own shutdown, which the drain runs before
(see `core.shutdown.SignalDrain`): until then the port keeps accepting, so a client told to
reconnect could come straight back to this process. The SIGTERM handler the drain wraps is
uvicorn's `Server.handle_exit`; its server keeps the asyncio servers it listens with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def _server(handler: Callable[..., Any]) -> Any:
    server = getattr(handler, "__self__", None)
    if server is None or not type(server).__module__.startswith("uvicorn."):
        return None
    return server


def stop_listening(handler: Callable[..., Any]) -> int:
    """Close the listening sockets of the uvicorn server behind a signal handler; how many.

    0 when the handler is not uvicorn's. Connections already accepted are not affected;
    uvicorn's own shutdown closes the (already closed) servers again, which is harmless.
    Kept-alive HTTP connections are left alone: uvicorn's way of ending them
    (`shutdown()`) would also end those a long-polling client is about to poll on, and
    that client would see a failed request instead of its Close message.
    """
    server = _server(handler)
    if server is None:
        return 0
    listeners = getattr(server, "servers", None)
    if not isinstance(listeners, list):
        return 0
    closed = 0
    for listener in listeners:
        # asyncio's servers or uvloop's (which do not derive from asyncio.AbstractServer).
        is_serving = getattr(listener, "is_serving", None)
        if callable(is_serving) and is_serving() and callable(getattr(listener, "close", None)):
            listener.close()
            closed += 1
    if closed:
        logger.info("Stopped listening on %d socket(s) to drain", closed)
    return closed
