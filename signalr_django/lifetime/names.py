"""Channel-layer group names for hubs, groups, users and connections.

Channels accepts group names of ASCII letters, digits, `-`, `_` and `.` under 100
characters; SignalR group and user names are any Unicode text of any length. Names are
therefore hashed (BLAKE2b, 128 bits): different names never share a layer group in practice,
and every message also carries the exact name, which receivers compare before delivering,
so even a collision could not misdeliver.
"""

from __future__ import annotations

import hashlib


def hub_key(hub_name: str) -> str:
    """A short, stable key for a hub class (its dotted path hashed)."""
    return hashlib.blake2b(hub_name.encode(), digest_size=6).hexdigest()


def _digest(name: str) -> str:
    return hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def all_group(key: str) -> str:
    """Every worker serving the hub."""
    return f"signalr.{key}.all"


def group_group(key: str, group: str) -> str:
    """Workers with a local member of `group`."""
    return f"signalr.{key}.g.{_digest(group)}"


def user_group(key: str, user_id: str) -> str:
    """Workers with a local connection of `user_id`."""
    return f"signalr.{key}.u.{_digest(user_id)}"


def connection_group(key: str, connection_id: str) -> str:
    """The worker that holds `connection_id`."""
    return f"signalr.{key}.c.{_digest(connection_id)}"
