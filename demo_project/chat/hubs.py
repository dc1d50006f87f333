"""`ChatHub`: what the page's JavaScript calls, and what it is sent back.

Client methods the page listens to:

- `ReceiveMessage(user, text, meta)`: a chat line; `meta["route"]` says how it came
  (`all`, `room`, `private` or `server`), so the page can show each route apart.
- `Notice(text, meta)`: a line from the hub itself (someone joined a room, came online).
- `Presence(users)`: the logged-in users online right now, sent whenever that changes.

Hub method names match case-insensitively with underscores ignored, so the page invokes
`SendMessage`, `JoinRoom`, `Counter` and so on, as it would against an ASP.NET Core hub.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from signalr_django import Hub, HubException, authorize

MAX_TEXT = 500
ROOM_NAME = re.compile(r"^[\w-]{1,30}$")
ROOMS_KEY = "rooms"
GUEST_NAME_KEY = "guest_name"


@dataclass(frozen=True, slots=True)
class Member:
    """Who holds a connection, as the page shows it."""

    user_id: str
    name: str


# Presence: which logged-in users have open connections. Hub instances live for one call
# only, and in the split deployment the connections are spread over several Daphne
# processes, so presence lives in Django's cache (local memory in one process, Redis when
# the workers share it): one key per connection plus an index of connection ids, guarded by
# a short lock.
PRESENCE_INDEX = "demo:presence"
PRESENCE_LOCK = "demo:presence:lock"


async def _change_presence(connection_id: str, member: Member | None) -> None:
    from django.core.cache import cache

    for _ in range(200):
        if await cache.aadd(PRESENCE_LOCK, 1, timeout=5):
            break
        await asyncio.sleep(0.01)
    try:
        index: dict[str, list[str]] = await cache.aget(PRESENCE_INDEX) or {}
        if member is None:
            index.pop(connection_id, None)
        else:
            index[connection_id] = [member.user_id, member.name]
        await cache.aset(PRESENCE_INDEX, index, timeout=None)
    finally:
        await cache.adelete(PRESENCE_LOCK)


async def online_members() -> dict[str, Member]:
    """Open connections of logged-in users, by connection id (all workers)."""
    from django.core.cache import cache

    index: dict[str, list[str]] = await cache.aget(PRESENCE_INDEX) or {}
    return {cid: Member(uid, name) for cid, (uid, name) in index.items()}


async def online_users() -> list[dict[str, Any]]:
    """The logged-in users with at least one open connection, by name."""
    counts: dict[Member, int] = {}
    for member in (await online_members()).values():
        counts[member] = counts.get(member, 0) + 1
    return [
        {"id": member.user_id, "name": member.name, "connections": count}
        for member, count in sorted(counts.items(), key=lambda item: item[0].name.lower())
    ]


def _clean_text(text: str) -> str:
    """Refuse empty and oversized lines with an error the page can show."""
    text = text.strip()
    if not text:
        raise HubException("Type a message first.")
    if len(text) > MAX_TEXT:
        raise HubException(f"Messages are limited to {MAX_TEXT} characters.")
    return text


def _clean_room(room: str) -> str:
    """Room names become group names: keep them short and printable."""
    room = room.strip().lstrip("#")
    if not ROOM_NAME.match(room):
        raise HubException("Room names are 1-30 letters, digits, '-' or '_'.")
    return room


class ChatHub(Hub):
    """A chat room server: broadcast, rooms (groups), private messages and a counter stream."""

    # -- who is calling --------------------------------------------------------------------

    def _member(self) -> Member | None:
        """The logged-in user behind this connection; None for anonymous connections."""
        user_id = self.context.user_identifier
        if user_id is None:
            return None
        return Member(user_id, self.context.user.get_username())

    def _sender(self, claimed: str) -> dict[str, Any]:
        """Who a message is from.

        `SendMessage(user, message)` is the signature of the ASP.NET Core tutorial, and
        anonymous clients written for it name themselves. A logged-in connection always
        speaks under its own name: the session, not the argument, decides.
        """
        member = self._member()
        if member is not None:
            return {"id": member.user_id, "name": member.name}
        name = claimed.strip()[:30]
        if name:
            self.context.items[GUEST_NAME_KEY] = name
        else:
            name = self.context.items.get(GUEST_NAME_KEY, "someone")
        return {"id": None, "name": f"{name} (guest)"}

    def _rooms(self) -> set[str]:
        """Rooms this connection joined (kept in `context.items`, which lives with it)."""
        rooms: set[str] = self.context.items.setdefault(ROOMS_KEY, set())
        return rooms

    # -- lifecycle -------------------------------------------------------------------------

    async def on_connected(self) -> None:
        """Tell everybody who came online and send the new presence list."""
        member = self._member()
        if member is not None:
            await _change_presence(self.context.connection_id, member)
            text = f"{member.name} is online."
        else:
            text = "A guest connected."
        await self.clients.others.send("Notice", text, {"route": "presence"})
        await self.clients.all.send("Presence", await online_users())

    async def on_disconnected(self, exception: Exception | None) -> None:
        """Tell everybody who left (and whether the connection failed)."""
        member = self._member()
        if member is not None:
            await _change_presence(self.context.connection_id, None)
        name = member.name if member is not None else "A guest"
        reason = f" ({exception})" if exception is not None else ""
        text = f"{name} went offline{reason}."
        await self.clients.others.send("Notice", text, {"route": "presence"})
        await self.clients.all.send("Presence", await online_users())

    # -- messages --------------------------------------------------------------------------

    async def send_message(self, user: str, text: str) -> None:
        """Everybody connected to the hub gets the line (`clients.all`)."""
        sender = self._sender(user)
        await self.clients.all.send(
            "ReceiveMessage", sender["name"], _clean_text(text), {"route": "all", "from": sender}
        )

    async def join_room(self, room: str) -> list[str]:
        """Add this connection to a group and say so in the room; returns the joined rooms."""
        room = _clean_room(room)
        rooms = self._rooms()
        if room not in rooms:
            await self.groups.add_to_group(self.context.connection_id, room)
            rooms.add(room)
            name = self._sender("")["name"]
            await self.clients.group(room).send(
                "Notice", f"{name} joined #{room}.", {"route": "room", "room": room}
            )
        return sorted(rooms)

    async def leave_room(self, room: str) -> list[str]:
        """Say goodbye in the room, then leave the group; returns the rooms still joined."""
        room = _clean_room(room)
        rooms = self._rooms()
        if room in rooms:
            name = self._sender("")["name"]
            await self.clients.group(room).send(
                "Notice", f"{name} left #{room}.", {"route": "room", "room": room}
            )
            await self.groups.remove_from_group(self.context.connection_id, room)
            rooms.discard(room)
        return sorted(rooms)

    async def send_to_room(self, room: str, user: str, text: str) -> None:
        """Members of the room get the line (`clients.group`); only members may post."""
        room = _clean_room(room)
        if room not in self._rooms():
            raise HubException(f"Join #{room} before posting there.")
        sender = self._sender(user)
        await self.clients.group(room).send(
            "ReceiveMessage",
            sender["name"],
            _clean_text(text),
            {"route": "room", "room": room, "from": sender},
        )

    @authorize
    async def send_private(self, to_user_id: str, text: str) -> None:
        """Every connection of the recipient gets the line (`clients.user`), and the sender's.

        Only logged-in connections have a user id to address, so guests cannot use this.
        """
        member = self._member()
        assert member is not None  # @authorize let only logged-in users through
        to_user_id = str(to_user_id)
        online = (await online_members()).values()
        recipient = next((m for m in online if m.user_id == to_user_id), None)
        if recipient is None:
            raise HubException(f"User {to_user_id} is not online.")
        text = _clean_text(text)
        meta = {
            "route": "private",
            "from": {"id": member.user_id, "name": member.name},
            "to": {"id": recipient.user_id, "name": recipient.name},
        }
        await self.clients.user(recipient.user_id).send("ReceiveMessage", member.name, text, meta)
        if recipient.user_id != member.user_id:
            # The sender's other tabs show the conversation too.
            await self.clients.user(member.user_id).send("ReceiveMessage", member.name, text, meta)

    # -- streaming -------------------------------------------------------------------------

    async def counter(self, count: int, delay_ms: int) -> AsyncIterator[int]:
        """Stream 1..count, one number every `delay_ms`.

        When the page disposes its subscription the client sends CancelInvocation and the
        generator is cancelled at its `await`, so nothing keeps counting for nobody.
        """
        if not 1 <= count <= 10_000:
            raise HubException("Count between 1 and 10000, please.")
        if not 10 <= delay_ms <= 10_000:
            raise HubException("Delay between 10 and 10000 ms, please.")
        for number in range(1, count + 1):
            yield number
            await asyncio.sleep(delay_ms / 1000)
