"""A short per-hub history in Redis, so a worker that resubscribes misses nothing.

Pub/sub forgets: a message published while a worker's subscriptions are gone (Redis
restarted and this worker has not resubscribed yet, its connection dropped and came back)
is acknowledged to the sender and reaches nobody. So every hub send goes through one Lua
script that appends the message to a capped Redis stream of the hub (`XADD MAXLEN ~`) and
publishes it, stamped with its stream id, in the same atomic step: one round trip, and the
live order is the stream order. A worker remembers the last id it delivered per hub; when
its subscriber connection comes back it asks Redis for a mark (an entry in each hub stream,
published to its own worker channel), ignores live sends until the mark arrives (they are in
the stream), then reads the entries between its last id and the mark and delivers them.

This is the only module that talks to Redis past the channel layer's API. It relies on
channels_redis's pub/sub layer (one shard, plain msgpack serializer: the script splices the
id into the serialized map) and on redis-py's connect callbacks (to learn of reconnects);
`attach` returns None for anything else and the backplane publishes plainly, as before.
`tests/lifetime/test_history.py` pins each of these assumptions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["RedisHistory", "attach", "counters", "id_after"]

# For metrics: sends this worker replayed from the history after resubscribing, and the
# catch-ups that found the history trimmed past its last id (sends lost here, logged).
counters: dict[str, int] = {"recovered": 0, "gaps": 0}

# XADD + PEXPIRE + PUBLISH as one step. The published payload is the msgpack map of the
# message with one more key, "s": the stream id (fixmap header + 1, then `"s": id` as a
# fixstr, or a str8 for an id over 31 characters).
_SCRIPT = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local body = ARGV[3]
local packed = string.char(160 + #id)
if #id > 31 then packed = '\\217' .. string.char(#id) end
redis.call('PUBLISH', ARGV[4], string.char(string.byte(body, 1) + 1) .. string.sub(body, 2)
  .. '\\161s' .. packed .. id)
return id
"""

_SCRIPT_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()

# Entries between two ids (both excluded), and whether entries after the first id were
# trimmed away: the entry `after` itself is gone (trimming removes the oldest entries) while
# this stream did trim some (`entries-added` > `length`, Redis >= 7; a stream recreated by a
# Redis restart without persistence holds all it was given, and nothing is reported).
_READ = """
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '(' .. ARGV[2])
local trimmed = 0
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])
  if ok then
    local added, length = 0, 0
    for i = 1, #info, 2 do
      if info[i] == 'entries-added' then added = info[i + 1] end
      if info[i] == 'length' then length = info[i + 1] end
    end
    if added > length then trimmed = 1 end
  end
end
return {entries, trimmed}
"""


def parse_id(value: str | bytes) -> tuple[int, int]:
    """A stream id as a comparable pair (milliseconds, sequence)."""
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def id_after(candidate: str, cursor: str | None) -> bool:
    """True when stream id `candidate` comes after `cursor` (None: before everything)."""
    return cursor is None or parse_id(candidate) > parse_id(cursor)


class RedisHistory:
    """The capped per-hub streams beside the pub/sub layer, and its reconnect signal."""

    def __init__(self, layer: Any, length: int, ttl: float = 3600.0) -> None:
        self.layer = layer
        self.length = length
        self.ttl_ms = int(ttl * 1000)
        self._watched: set[int] = set()

    # -- internals of channels_redis, in one place -----------------------------------------

    def _shard(self) -> Any:
        loop_layer = self.layer._get_layer()
        shard = loop_layer._shards[0]
        shard._ensure_redis()
        return shard

    def key(self, hub_key: str) -> str:
        """The Redis key of a hub's history stream."""
        return f"{self.layer._get_layer().prefix}signalr.history.{hub_key}"

    def group_channel(self, group: str) -> str:
        """The Redis pub/sub channel the layer uses for a layer group."""
        return str(self.layer._get_layer()._get_group_channel_name(group))

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, hub_key: str, channel: str, message: dict[str, Any]) -> str:
        """Append `message` to the hub's history and publish it on `channel`; returns its id.

        `channel` is a Redis channel name: `group_channel(group)` for a layer group, or a
        worker channel as returned by the layer's `new_channel`.
        """
        body = self.layer.serialize(message)
        if not 0x80 <= body[0] < 0x8F:
            raise ValueError("A history message must serialise to a msgpack map of < 15 keys.")
        from redis.exceptions import NoScriptError  # the `redis` extra: present with this layer

        redis = self._shard()._redis
        args = (self.key(hub_key), self.length, self.ttl_ms, body, channel)
        try:
            return _text(await redis.evalsha(_SCRIPT_SHA, 1, *args))
        except NoScriptError:
            # A restarted Redis forgot its scripts: EVAL sends the text and caches it again.
            return _text(await redis.eval(_SCRIPT, 1, *args))

    async def read(
        self, hub_key: str, after: str, before: str
    ) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """Entries strictly between `after` and `before`, and whether some were trimmed."""
        redis = self._shard()._redis
        entries, trimmed = await redis.eval(_READ, 1, self.key(hub_key), after, before)
        messages: list[tuple[str, dict[str, Any]]] = []
        for entry_id, fields in entries:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            body = values.get(b"m", values.get("m"))
            if body is None:
                continue
            messages.append((_text(entry_id), self.layer.deserialize(body)))
        return messages, bool(trimmed)

    # -- reconnects ------------------------------------------------------------------------

    def watch(self, callback: Callable[[Any], None]) -> bool:
        """Call `callback(connection)` each time the subscriber connection reconnects.

        redis-py runs its connect callbacks after every (re)connect, after the pub/sub
        object has resent SUBSCRIBE for all its channels. `callback` must be a bound
        method (redis-py keeps weak references). Returns False when it cannot be watched.
        """
        shard = self._shard()
        pubsub = shard._pubsub
        connection = getattr(pubsub, "connection", None)
        if connection is None:
            return False
        if id(connection) not in self._watched:
            connection.register_connect_callback(callback)
            self._watched.add(id(connection))
        return True


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def attach(layer: Any, length: int) -> RedisHistory | None:
    """A history for `layer` when it is channels_redis's pub/sub layer on one Redis, else None.

    Other layers (the classic one, sharded hosts, encrypted or non-msgpack serializers) keep
    plain pub/sub delivery: what was published while a worker was not subscribed is lost.
    """
    if length <= 0 or type(layer).__name__ != "RedisPubSubChannelLayer":
        return None
    serializer = getattr(layer, "_serializer", None)
    if (
        type(serializer).__name__ != "MsgPackSerializer"
        or getattr(serializer, "crypter", None) is not None
        or getattr(serializer, "random_prefix_length", 0) != 0
    ):
        logger.info("Backplane history off: the layer's serializer is not plain msgpack")
        return None
    hosts = getattr(layer, "_kwargs", {}).get("hosts") or (layer._args[:1] or [None])[0]
    if isinstance(hosts, list | tuple) and len(hosts) > 1:
        logger.info("Backplane history off: the layer is sharded over several hosts")
        return None
    return RedisHistory(layer, length)
