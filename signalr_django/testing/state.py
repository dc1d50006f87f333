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
