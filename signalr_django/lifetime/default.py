"""Which backplane this process uses, from settings.

`SIGNALR["BACKPLANE"]`:
- `"auto"` (default): the channel layer named by `CHANNEL_LAYER` when it can reach other
  processes (channels_redis, for example); none for the in-memory layer, since one process
  needs no backplane and the in-memory layer cannot reach another.
- `"channel_layer"`: always use the channel layer, even the in-memory one (tests).
- `"none"`: this process only.
"""

from __future__ import annotations

from .backplane import Backplane, layer_is_local
from .history import attach

_backplane: Backplane | None = None
_resolved = False


def default_backplane() -> Backplane | None:
    """The process's backplane, created on first use."""
    global _backplane, _resolved
    if _resolved:
        return _backplane
    from channels.layers import get_channel_layer

    from ..conf import global_options

    options = global_options()
    mode = options.BACKPLANE
    _resolved = True
    if mode == "none":
        return None
    layer = get_channel_layer(options.CHANNEL_LAYER)
    if layer is None or (mode == "auto" and layer_is_local(layer)):
        return None
    refresh: float | None = None
    # Only the classic layer has `group_expiry` (the pub/sub layer proxies attribute
    # lookups to a per-event-loop object, so ask the instance dict, not getattr).
    expiry = vars(layer).get("group_expiry")
    if isinstance(expiry, int | float) and expiry > 0:
        # The classic Redis layer forgets memberships after `group_expiry` seconds.
        refresh = min(options.GROUP_REFRESH_INTERVAL, expiry / 2)
    _backplane = Backplane(layer, options.BACKPLANE_TIMEOUT, refresh)
    _backplane.history = attach(layer, options.BACKPLANE_HISTORY_LENGTH)
    return _backplane


def reset() -> None:
    """Forget the process backplane (settings changed)."""
    global _backplane, _resolved
    _backplane = None
    _resolved = False
