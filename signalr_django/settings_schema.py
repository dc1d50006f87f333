"""What each SignalR option may be: its type, range or allowed values, and what it means.

One table, read by three users: `conf.py` (settings that are wrong fall back to their
default so start-up never fails on them, hub and endpoint options that are wrong raise when
mapped), the system checks (`checks.py`: one message per mistake, naming the key), and the
settings reference (`docs/checks.md`). A value is checked without importing anything, so
reading settings stays safe before the app registry is ready; dotted paths and aliases
are resolved by the checks.

An option missing from the table (added to `HubOptions` without an entry) is still checked
from its annotation, so a new setting is never unchecked; `tests/unit/test_settings_schema.py`
asks for an entry anyway, for the reference's sake.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TRANSPORT_NAMES = ("WebSockets", "ServerSentEvents", "LongPolling")
PROTOCOL_NAMES = ("json", "messagepack")
BACKPLANE_MODES = ("auto", "channel_layer", "none")

# Check ids (see checks.py and the README's "System checks"): a wrong value is E004 unless
# the option has its own id from before this table existed.
BAD_VALUE = "signalr.E004"

Validator = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Spec:
    """One option: how to check a value, how to describe a good one, what it does."""

    valid: Validator
    expected: str  # completes "expected ...": the type and range, in words
    meaning: str
    check_id: str = BAD_VALUE
    # The dotted path must import (checked by `manage.py check`, not when read).
    importable: bool = False
    # The value names an entry of this Django setting (CHANNEL_LAYERS, CACHES).
    alias_of: str | None = None


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)  # NaN and infinity compare strangely in every timer
    )


def seconds(meaning: str, *, zero: bool = False, optional: bool = False) -> Spec:
    """A duration: a number of seconds above zero (or at least zero when `zero`)."""

    def valid(value: Any) -> bool:
        if value is None:
            return optional
        return _is_number(value) and (value >= 0 if zero else value > 0)

    bound = ">= 0" if zero else "> 0"
    return Spec(valid, f"a number of seconds {bound}" + (" or None" if optional else ""), meaning)


def whole(
    meaning: str, *, minimum: int = 0, optional: bool = False, check_id: str = BAD_VALUE
) -> Spec:
    """A count: a whole number of at least `minimum`, or None when `optional`."""

    def valid(value: Any) -> bool:
        if value is None:
            return optional
        return type(value) is int and value >= minimum

    return Spec(
        valid,
        f"a whole number >= {minimum}" + (" or None" if optional else ""),
        meaning,
        check_id,
    )


def flag(meaning: str) -> Spec:
    """True or False (1 and "yes" are refused: they usually mean a typo)."""
    return Spec(lambda value: isinstance(value, bool), "True or False", meaning)


def one_of(values: tuple[Any, ...], meaning: str, check_id: str = BAD_VALUE) -> Spec:
    """One of a few literal values."""
    return Spec(lambda value: value in values, "one of " + _listed(values), meaning, check_id)


def text(meaning: str, *, optional: bool = False, alias_of: str | None = None) -> Spec:
    """A non-empty string (a URL, a name, an alias of another setting)."""

    def valid(value: Any) -> bool:
        if value is None:
            return optional
        return isinstance(value, str) and bool(value)

    expected = "a non-empty string" + (" or None" if optional else "")
    if alias_of is not None:
        expected = f"the name of an entry of {alias_of}"
    return Spec(valid, expected, meaning, alias_of=alias_of)


def texts(
    meaning: str,
    *,
    optional: bool = False,
    allowed: tuple[str, ...] = (),
    non_empty: bool = False,
    check_id: str = BAD_VALUE,
) -> Spec:
    """A list (or tuple) of strings, optionally drawn from `allowed`."""

    def valid(value: Any) -> bool:
        if value is None:
            return optional
        if not isinstance(value, list | tuple) or (non_empty and not value):
            return False
        if not all(isinstance(item, str) for item in value):
            return False
        return not allowed or all(item in allowed for item in value)

    expected = "a non-empty list" if non_empty else "a list"
    expected += f" of {_listed(allowed)}" if allowed else " of strings"
    return Spec(valid, expected + (" or None" if optional else ""), meaning, check_id)


def dotted(meaning: str, *, optional: bool = False, callable_ok: bool = False) -> Spec:
    """The dotted import path of a callable (`"package.module.name"`), or the callable."""

    def valid(value: Any) -> bool:
        if value is None:
            return optional
        if callable_ok and callable(value):
            return True
        return isinstance(value, str) and "." in value.strip(".")

    expected = ("a callable or " if callable_ok else "") + "a dotted import path"
    return Spec(valid, expected + (" or None" if optional else ""), meaning, importable=True)


def _anything(value: Any) -> bool:
    return True


def _listed(values: tuple[Any, ...]) -> str:
    return ", ".join(repr(v) if not isinstance(v, str) else v for v in values)


CAP = "signalr.E010"

SCHEMA: dict[str, Spec] = {
    "KEEP_ALIVE_INTERVAL": seconds("seconds between the server's pings to each client"),
    "CLIENT_TIMEOUT_INTERVAL": seconds(
        "a client silent this long is closed (counted after its first message)"
    ),
    "HANDSHAKE_TIMEOUT": seconds("seconds a new connection has to complete the handshake"),
    "MAXIMUM_RECEIVE_MESSAGE_SIZE": whole(
        "bytes in one message from a client; a bigger one closes the connection", minimum=1
    ),
    "MAXIMUM_PARALLEL_INVOCATIONS_PER_CLIENT": whole(
        "hub method calls of one connection that run at once", minimum=1
    ),
    "STREAM_BUFFER_CAPACITY": whole("items buffered per client-to-server stream", minimum=1),
    "MAXIMUM_PARALLEL_STREAMS_PER_CLIENT": whole(
        "server-to-client streams at once per connection (None: no cap)",
        optional=True,
        check_id=CAP,
    ),
    "MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT": whole(
        "client-to-server streams at once per connection (None: no cap)",
        optional=True,
        check_id=CAP,
    ),
    "MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT": whole(
        "client results awaited from one connection (None: no cap)",
        optional=True,
        check_id=CAP,
    ),
    "MAXIMUM_GROUPS_PER_CLIENT": whole(
        "groups one connection belongs to (None: no cap)", optional=True, check_id=CAP
    ),
    "MAXIMUM_GROUP_NAME_LENGTH": whole(
        "characters in a group name (None: no cap)", optional=True, check_id=CAP
    ),
    "MAXIMUM_USER_ID_LENGTH": whole(
        "characters in a user id; a longer one refuses the handshake (None: no cap)",
        optional=True,
        check_id=CAP,
    ),
    "ENABLE_DETAILED_ERRORS": flag("send exception messages of hub methods to clients"),
    "SUPPORTED_PROTOCOLS": texts(
        "hub protocols clients may choose (None: every installed one)",
        optional=True,
        allowed=PROTOCOL_NAMES,
        non_empty=True,
        check_id="signalr.E005",
    ),
    "TRANSPORTS": texts(
        "transports offered at negotiate",
        allowed=TRANSPORT_NAMES,
        non_empty=True,
        check_id="signalr.E002",
    ),
    "DISCONNECT_TIMEOUT": seconds(
        "seconds a negotiated connection may wait before it connects, or between polls"
    ),
    "MINIMUM_NEGOTIATE_VERSION": one_of((0, 1), "oldest negotiate protocol version accepted"),
    "USER_ID_PROVIDER": dotted("`(user, scope) -> str | None`: the user id of a connection"),
    "AUTHENTICATOR": dotted(
        "checks bearer tokens (`access_token`); None: tokens are not accepted", optional=True
    ),
    "ACCESS_TOKEN_MAX_AGE": seconds("lifetime of tokens made by `create_access_token`"),
    "ALLOWED_ORIGINS": texts(
        "browser origins allowed to connect besides ALLOWED_HOSTS (`'*'` for any)",
        optional=True,
    ),
    "CORS_ALLOWED_ORIGINS": texts("cross-origin callers of negotiate, with credentials"),
    "BACKPLANE": one_of(
        BACKPLANE_MODES,
        "'auto': the channel layer when it reaches other processes; 'channel_layer': "
        "always; 'none': this process only",
        check_id="signalr.E003",
    ),
    "CHANNEL_LAYER": text("the channel layer the backplane uses", alias_of="CHANNEL_LAYERS"),
    "BACKPLANE_TIMEOUT": seconds("seconds to wait for the channel layer or another worker"),
    "QUERY_TIMEOUT": seconds(
        "seconds a presence query or `manage.py signalr` waits for the workers' answers"
    ),
    "SHUTDOWN_DRAIN_TIMEOUT": seconds(
        "seconds to close connections gracefully on SIGTERM", zero=True
    ),
    "OUTBOUND_BUFFER_LIMIT": whole("bytes waiting for one client before it is closed", minimum=1),
    "MAX_CONNECTIONS": whole(
        "connections per worker; past it negotiate answers 503 (None or 0: no limit)",
        optional=True,
    ),
    "WORKER_URL": text(
        "this worker's public URL, for load reports (env SIGNALR_WORKER_URL)", optional=True
    ),
    "WORKERS": texts("worker URLs the WSGI site's negotiate redirect chooses from"),
    "LOAD_CACHE": text(
        "the cache the workers share: load reports and connection claims",
        alias_of="CACHES",
    ),
    "LOAD_REPORT_INTERVAL": seconds("seconds between a worker's load reports"),
    "BACKPLANE_HISTORY_LENGTH": whole(
        "sends kept per hub in a capped Redis stream (pub/sub layer) for workers that "
        "resubscribe after losing Redis; 0 turns the history off"
    ),
    "GROUP_REFRESH_INTERVAL": seconds(
        "seconds between re-adding memberships on layers that expire them"
    ),
    "ALLOW_STATEFUL_RECONNECTS": flag("grant stateful reconnect to clients that ask for it"),
    "STATEFUL_RECONNECT_BUFFER_SIZE": whole(
        "unacknowledged bytes above which a stream's items wait", minimum=1
    ),
    "HUB_FILTERS": Spec(
        _anything,
        "a list of hub filters (instances, classes or dotted paths)",
        "filters run around every hub's calls and events",
        check_id="signalr.E020",
    ),
    "AUTHORIZE": Spec(
        _anything,
        "None, True or a dict with 'permissions' and/or 'test'",
        "who may connect, on top of the hub's @authorize",
        check_id="signalr.E009",
    ),
    "CLOSE_ON_AUTHENTICATION_EXPIRATION": flag(
        "close a connection once its token or session expires"
    ),
    "METRICS": flag(
        "count traffic, invocations and disconnect reasons for the Prometheus endpoint"
    ),
    "REST_API": Spec(
        lambda value: value is None or isinstance(value, dict),
        "None or a dict with ACCESS_KEY and HUBS",
        "the REST management API (docs/rest-api.md)",
        check_id="signalr.E040",
    ),
    "NEGOTIATE_RESPONSE_HOOK": dotted(
        "`hook(scope, user, headers)` adding headers to negotiate responses",
        optional=True,
        callable_ok=True,
    ),
}


def spec(name: str, annotation: str = "") -> Spec | None:
    """The entry of option `name`, or one derived from its annotation (None: not checked)."""
    entry = SCHEMA.get(name)
    if entry is not None:
        return entry
    optional = annotation.endswith("| None")
    kind = annotation.removesuffix("| None").strip()
    if kind == "bool":
        return flag("")
    if kind == "int":
        return whole("", optional=optional)
    if kind == "float":
        return seconds("", zero=True, optional=optional)
    if kind == "str":
        return text("", optional=optional)
    if kind == "tuple[str, ...]":
        return texts("", optional=optional)
    return None


def problem(name: str, value: Any, annotation: str = "") -> Spec | None:
    """The entry of option `name` when `value` breaks it, else None."""
    entry = spec(name, annotation)
    if entry is None or entry.valid(value):
        return None
    return entry


def option_annotations(options_cls: type) -> dict[str, str]:
    """Each field of a dataclass with its annotation as written."""
    return {f.name: str(f.type) for f in dataclasses.fields(options_cls)}
