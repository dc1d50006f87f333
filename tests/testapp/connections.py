"""Connection handlers (raw connections, no hub protocol) exercised by the end-to-end tests."""

from __future__ import annotations

import json

from signalr_django import Connection, ConnectionHandler, authorize

# Why each connection of this process ended, by connection id ("None" or the exception's
# type and text), for the `ended:` command.
ENDED: dict[str, str] = {}


class EchoConnection(ConnectionHandler):
    """Sends every message back as received: text as text, binary as binary."""

    async def on_message(self, connection: Connection, data: str | bytes) -> None:
        await connection.send(data)


class ControlConnection(ConnectionHandler):
    """Text commands that drive the server side of a raw connection.

    `info` answers a JSON object (id, transport, user); `close` answers `bye` and closes
    the connection from the server; `to:ID:TEXT` sends TEXT to connection ID (same route,
    same worker); `ended:ID` answers how connection ID ended; `boom` raises; anything
    else is echoed with a `got:` prefix.
    """

    async def on_connected(self, connection: Connection) -> None:
        connection.items["count"] = 0
        await connection.send(f"welcome {connection.transport}")

    async def on_message(self, connection: Connection, data: str | bytes) -> None:
        connection.items["count"] += 1
        text = data if isinstance(data, str) else data.decode()
        if text == "info":
            user = connection.user
            await connection.send(
                json.dumps(
                    {
                        "id": connection.connection_id,
                        "transport": connection.transport,
                        "user": user.username if user.is_authenticated else None,
                        "count": connection.items["count"],
                        "type": type(data).__name__,
                    }
                )
            )
        elif text == "close":
            await connection.send("bye")
            connection.close()
        elif text.startswith("to:"):
            _, target, message = text.split(":", 2)
            other = self.connections.get(target)
            await connection.send("sent" if other is not None else "unknown")
            if other is not None:
                await other.send(message)
        elif text.startswith("ended:"):
            await connection.send(ENDED.get(text[6:], "running"))
        elif text == "boom":
            raise RuntimeError("boom")
        else:
            await connection.send(f"got:{text}")

    async def on_disconnected(self, connection: Connection, exc: Exception | None) -> None:
        ENDED[connection.connection_id] = "None" if exc is None else f"{type(exc).__name__}: {exc}"


class RefusingConnection(ConnectionHandler):
    """`on_connected` raises: the connection is closed at once."""

    async def on_connected(self, connection: Connection) -> None:
        raise RuntimeError("not today")


@authorize
class AuthEchoConnection(EchoConnection):
    """Only authenticated users may connect; echoes the user's name first."""

    async def on_connected(self, connection: Connection) -> None:
        await connection.send(f"user:{connection.user.username}")
