"""Start each test from no connections and the backplane the current settings name."""

from __future__ import annotations

import asyncio
import contextlib


async def reset_hub_state() -> None:
    """Forget every hub's connections and groups, and stop and forget the backplane.

    A process keeps one lifetime manager per hub and one backplane, made on first use
    from the settings and bound to the event loop they first ran on. Tests run on a new
    loop each and may change `CHANNEL_LAYERS` or `SIGNALR`; call this between such tests
    (a fixture's teardown, say) so the next connection starts on the test's own loop with
    the backplane its settings name. Only for tests: live connections are not closed.
    """
    from ..dispatch import handler
    from ..lifetime import default, manager

    backplane = default._backplane
    default.reset()
    manager._managers.clear()
    handler._handlers.clear()
    if backplane is None:
        return
    await backplane.stop()
    close_pools = getattr(backplane.layer, "close_pools", None)
    if close_pools is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(close_pools(), 5)


async def close_sync_connections() -> None:
    """Close the database connections left open in Django's sync thread.

    Plain `def` hub methods (and the async ORM) run in one worker thread, whose database
    connection outlives the test that opened it. `database_sync_to_async` checks that
    connection before every call; in a later test without database access pytest-django
    refuses the check, and the hub method fails. Communicators call this when they connect
    and disconnect, and `call_method` before a sync method; an autouse fixture calling it
    protects other code that runs sync functions through `database_sync_to_async`.
    Closing never opens a connection, so it is harmless with or without database access.
    """
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all, thread_sensitive=True)()
