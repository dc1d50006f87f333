"""Presence and queries across workers: connection counts, users, groups, closing.

See `docs/presence.md`. The entry points are `get_hub_context(Hub).presence` (and the sync
context's), `HubContext.close_connection`, and `cluster_status` for every worker and hub.
"""

from __future__ import annotations

from .answer import Answer
from .api import Presence, SyncPresence, cluster_status, cluster_status_sync

__all__ = ["Answer", "Presence", "SyncPresence", "cluster_status", "cluster_status_sync"]
