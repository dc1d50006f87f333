"""One worker per connection id: a connection token starts one connection, once, anywhere.

Connection tokens are stateless (signed, see `negotiate`), so any worker accepts any token
(no sticky sessions). Alone, that would let one token be used on two workers at once, or on
a second worker after its connection ended on the first, since each worker only knows its
own connections. Server-Sent Events and long polling are already safe among themselves:
the token names the negotiating worker, every worker forwards those requests there, and
only that worker creates the connection. A WebSocket cannot be forwarded, so with no
session affinity its owner is simply the first worker to accept the token; it can be any.

The cheapest correct rule: when a connection starts with a token (a WebSocket after
negotiate, the first GET of SSE or long polling), the worker *claims* the connection id in
the shared Django cache named by `LOAD_CACHE` with `cache.add`, which is atomic on Redis
(SET NX) and in the local-memory cache. Exactly one claim succeeds; every other start is
refused, whichever worker and transport it uses. The claim is never released: it doubles
as the tombstone of the ended connection, and it expires by itself once the token can no
longer start a connection anywhere (`issued + DISCONNECT_TIMEOUT + 5` s, the age check
every worker applies, plus `CLOCK_MARGIN` for clock skew between hosts). So Redis holds
one small key per connection started in the last ~minute, and pays one round trip per
connection start and none at its end or on any message (messages of an open connection
never consult it; a stateful reconnect resumes from the owner's memory).

Refused starts look like an unknown connection (HTTP 404, a refused upgrade), so clients
negotiate a new connection. Keys are a hash of the connection id: no token or id is stored.

Only workers with a backplane claim: one process with the in-memory layer already knows
every connection (the checks on `connections`, `ended_ids` and the HTTP manager cover it).
If the cache cannot be reached (or does not answer within `BACKPLANE_TIMEOUT`), the start
is refused with a clear error (503 with Retry-After over HTTP; Daphne can only refuse a
WebSocket upgrade with 403) and a rate-limited WARNING is logged: accepting would risk a
token in use on two workers. Open connections, negotiate and token-less connections
(skipNegotiation WebSockets get a fresh server-made id) are unaffected.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import socket
import time
from typing import Any

from ..core.cacheio import offload
from .negotiate import ConnectionToken

logger = logging.getLogger(__name__)

KEY = "signalr:owner:{digest}"
CLOCK_MARGIN = 30.0
UNAVAILABLE = b"The connection registry is unreachable; retry later."
WARN_EVERY = 10.0

_worker = f"{socket.gethostname()}:{os.getpid()}"
_last_warning = -math.inf


class RegistryUnavailable(Exception):
    """The shared cache holding connection claims did not answer."""


def claim_key(connection_id: str) -> str:
    """The cache key of a connection id's claim (a digest: no id is stored)."""
    digest = hashlib.sha256(b"signalr_django.owner|" + connection_id.encode()).hexdigest()
    return KEY.format(digest=digest[:40])


def claim_ttl(token: ConnectionToken, disconnect_timeout: float, now: float) -> int:
    """Seconds a claim must live: until no worker accepts the token for a start."""
    usable_until = token.issued + disconnect_timeout + 5
    return max(1, math.ceil(usable_until - now + CLOCK_MARGIN))


async def claim(
    cache: Any, token: ConnectionToken, disconnect_timeout: float, timeout: float
) -> bool:
    """Claim `token`'s connection for this worker: True if it is ours, False if taken.

    Raises RegistryUnavailable when the cache fails or does not answer within `timeout`.
    """
    key = claim_key(token.connection_id)
    ttl = claim_ttl(token, disconnect_timeout, time.time())
    try:
        added = await asyncio.wait_for(cache.aadd(key, _worker, timeout=ttl), timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _warn(exc)
        raise RegistryUnavailable(str(UNAVAILABLE, "ascii")) from exc
    return bool(added)


async def claim_for(handler: Any, token: ConnectionToken) -> bool:
    """`claim` with the hub's options; always True for a worker without a backplane."""
    if handler.lifetime.backplane is None:
        return True
    from django.core.cache import caches

    options = handler.options
    cache = offload(caches[options.LOAD_CACHE])
    return await claim(cache, token, options.DISCONNECT_TIMEOUT, options.BACKPLANE_TIMEOUT)


def _warn(exc: BaseException) -> None:
    """One WARNING per WARN_EVERY seconds, without the error text (it may name hosts)."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY:
        _last_warning = now
        logger.warning(
            "Connection registry (cache) unreachable (%s); refusing new connections with a "
            "token until it answers",
            type(exc).__name__,
        )


async def claim_websocket(
    handler: Any, token: ConnectionToken, scope: dict[str, Any], send: Any
) -> bool:
    """Claim before accepting an upgrade; on failure the upgrade is refused here.

    Taken: refused like an unknown connection (Daphne answers 403). Registry unreachable:
    503 with Retry-After where the server supports ASGI WebSocket denial responses, else
    the same refusal.
    """
    try:
        if await claim_for(handler, token):
            return True
    except RegistryUnavailable:
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"text/plain"), (b"retry-after", b"5")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": UNAVAILABLE})
            return False
    await send({"type": "websocket.close", "code": 1008})
    return False
