"""`Sent`: what every client send, client-result call and group change returns.

A hub method may be `async def` (run on the server's event loop) or plain `def` (run in a
worker thread so the ORM works), and `self.clients` / `self.groups` are the same objects in
both. A coroutine cannot serve both: in a `def` method nothing would ever run it, so the
send would vanish with only a RuntimeWarning as trace. `Sent` can:

- Made in a thread with no running event loop (a `def` hub method, a WSGI view, a task
  queue worker) the call is carried to the loop that owns the connections and waits until
  the lifetime manager took the message (or the client answered), like python-socketio's
  sync `Server`. An error (LimitExceededError, BackplaneError, ConnectionGoneError, ...)
  is raised right there; the returned `Sent` is already complete: `.result()` reads a
  client result, and awaiting it just gives that value back.
- Made on an event loop (an `async def` method) it is lazy: nothing happens until it is
  awaited, exactly like the coroutine it replaces (the cost is noted below). One
  that is dropped without being awaited logs an ERROR naming the client method, since the
  message it stood for was never sent.

It is not typed as `typing.Coroutine` on purpose: mypy's `unused-coroutine` check (on by
default) would flag every bare send in a `def` method, while any other awaitable is only
flagged by the opt-in `unused-awaitable` code. At run time it still implements the
coroutine protocol, so `asyncio.create_task` takes it as it took the coroutines before.

Made on the loop, the `Sent` costs about a microsecond per call more than the coroutine it
replaces (an object and two small method calls), nothing per recipient.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
from asyncio import _get_running_loop
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .lifetime.manager import HubLifetimeManager

T = TypeVar("T")

logger = logging.getLogger("signalr_django")

# How long a sync caller waits for the server loop to take a message before giving up.
SYNC_TIMEOUT = 30.0

_PENDING = 0  # made on a loop, not awaited yet
_AWAITED = 1  # made on a loop and handed to an await
_DONE = 2  # carried out synchronously; `_value` holds the result


class Sent(Coroutine[Any, Any, T]):
    """A client send, client result or group change: await it in async code; in sync code
    (a `def` hub method) it has already happened when the call returns.

    `result()` gives a client result in sync code; awaiting gives it in async code. It is a
    `collections.abc.Coroutine` so that `asyncio.create_task` and `TaskGroup.create_task`
    take it as they took the coroutines it replaces (mypy's `unused-coroutine` check looks
    for `typing.Coroutine` itself, so it stays quiet about bare calls in `def` methods).
    """

    __slots__ = ("_args", "_func", "_it", "_state", "_value", "_what")

    _value: Any
    _func: Callable[..., Coroutine[Any, Any, T]] | None
    _args: tuple[Any, ...]
    _it: Generator[Any, None, T] | None

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        what: str,
        func: Callable[..., Coroutine[Any, Any, T]],
        args: tuple[Any, ...],
        sync: bool = False,
        wait: float | None = SYNC_TIMEOUT,
    ) -> None:
        """`func(*args)`: lazy on an event loop, carried out now off any loop.

        Made by the client proxies and group managers, not by user code. `what` names the
        client method (or group change) for messages; `sync=True` (the sync hub context)
        always carries the call out now and refuses the server's own loop; `wait` bounds
        how long a sync caller waits for the server loop.
        """
        self._what = what
        if not sync and _get_running_loop() is not None:
            self._func = func
            self._args = args
            self._state = _PENDING
            return
        self._state = _DONE
        self._value = None
        self._value = run_sync(lifetime, func(*args), wait)

    def __await__(self) -> Generator[Any, None, T]:
        """Run the call (made on a loop) or hand back its result (made in sync code)."""
        state = self._state
        if state == _PENDING:
            func = self._func
            assert func is not None
            self._state = _AWAITED
            self._func = None
            return func(*self._args).__await__()
        if state == _DONE:
            return _completed(self._value)
        raise RuntimeError(f"The call of {self._what!r} was awaited already; await it once.")

    def _steps(self) -> Generator[Any, None, T]:
        it: Generator[Any, None, T] | None = getattr(self, "_it", None)
        if it is None:
            it = self._it = self.__await__()
        return it

    def send(self, value: Any) -> Any:
        """Coroutine protocol (used by asyncio.Task): advance the call."""
        return self._steps().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Coroutine protocol (used by asyncio.Task): raise `typ` inside the call."""
        exc = typ if val is None else typ(val) if isinstance(typ, type) else val
        if tb is not None:
            exc = exc.with_traceback(tb)
        return self._steps().throw(exc)

    def close(self) -> None:
        """Coroutine protocol: abandon the call (a pending one then never runs, silently)."""
        if self._state == _PENDING:
            self._state = _AWAITED
            self._func = None
            return
        it = getattr(self, "_it", None)
        if it is not None:
            it.close()

    def result(self) -> T:
        """The client result (None for sends) of a call made in sync code.

        A call made on the event loop has not happened yet: await it instead.
        """
        if self._state != _DONE:
            raise RuntimeError(
                f"The call of {self._what!r} was made on the event loop and runs when "
                "awaited: use `await`, not `.result()`, in async code."
            )
        value: T = self._value
        return value

    def __repr__(self) -> str:
        state = ("pending", "awaited", "done")[self._state]
        return f"<Sent {self._what!r} {state}>"

    def __del__(self) -> None:
        if self._state == _PENDING:
            _never_awaited(self._what)


def _completed(value: T) -> Generator[Any, None, T]:
    yield from ()
    return value


def _never_awaited(what: str) -> None:
    try:
        logger.error(
            "The client call %r was never awaited, so nothing was sent: in an async hub "
            "method write `await self.clients....`.",
            what,
        )
    except Exception:  # pragma: no cover - logging torn down at interpreter exit
        pass


def refuse_waiting_on_the_sync_thread(what: str) -> None:
    """Raise when a client result would be awaited on asgiref's single sync thread.

    A `def` hub method runs on Django's one thread for sync code unless it is marked
    `thread_sensitive=False`. Waiting there for a client makes every other user of that
    thread wait too: other `def` methods, sync views, and the session and user lookups of
    AuthMiddlewareStack, including the one for the long-polling or SSE POST that carries
    the client's answer, so the call could only end by timing out. Failing at once with
    the fix in the message beats a process-wide stall.
    """
    from asgiref.sync import SyncToAsync

    if SyncToAsync.deadlock_context.get(False):
        raise RuntimeError(
            f"Client result {what!r} requested on Django's single sync thread: waiting there "
            "would stall every sync view and ORM call of this process (and the request that "
            "carries the answer). Mark the hub method @hub_method(thread_sensitive=False), "
            "or make it async."
        )


def server_loop(lifetime: HubLifetimeManager | None) -> asyncio.AbstractEventLoop | None:
    """The event loop that owns this process's connections (of `lifetime`'s hub, or of any
    hub when None), if there is one."""
    from .lifetime.manager import _managers

    candidates = [lifetime] if lifetime is not None else list(_managers.values())
    for manager in candidates:
        loop = manager.loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            return loop
    # A sync view under an ASGI server runs in a thread started from the server's loop.
    from asgiref.sync import SyncToAsync

    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) == os.getpid():
        main: asyncio.AbstractEventLoop | None = getattr(local, "main_event_loop", None)
        if main is not None and main.is_running():
            return main
    return None


_private_loop: asyncio.AbstractEventLoop | None = None
_private_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """A process-wide event loop in a daemon thread, for processes without a server loop.

    WSGI workers, management commands and task queue workers send through it; keeping one
    loop alive keeps the channel layer's Redis connections warm between calls.
    """
    global _private_loop
    with _private_lock:
        if _private_loop is None or _private_loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="signalr-hub-context", daemon=True
            )
            thread.start()
            _private_loop = loop
        return _private_loop


def run_sync(
    lifetime: HubLifetimeManager | None,
    coro: Coroutine[Any, Any, T],
    wait: float | None = SYNC_TIMEOUT,
) -> T:
    """Run `coro` on the loop owning the connections and wait for its result.

    The caller's context variables travel with it (the running invocation's scope, so a
    client result gives the invocation's slot back and sends pace on the caller's backlog).
    """
    if _get_running_loop() is not None:
        # Blocking here would stop the loop (a deadlock when it is the server's own).
        coro.close()
        raise RuntimeError(
            "The sync hub context was called from async code (on the server's event loop "
            "or another one); use `await get_hub_context(...)` there."
        )
    loop = server_loop(lifetime)
    if loop is None:
        if lifetime is not None:  # a send (presence queries answer for themselves)
            from .core import reach

            reach.check_send(lifetime)
        loop = background_loop()
    return contextvars.copy_context().run(_submit, coro, loop).result(wait)


def _submit(coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop) -> Future[T]:
    """Hand `coro` to `loop` in the current (copied) context, minus asgiref's deadlock mark.

    A `def` hub method runs under `sync_to_async`, which marks its context as holding the
    single sync thread. Tasks the carried call starts would inherit that mark: a client
    result frees the invocation's slot and starts the connection's next queued invocation
    from there, and a `def` one would then be refused with "would deadlock". Nothing the
    lifetime manager runs needs the sync thread, so the mark does not apply to them.
    """
    from asgiref.sync import SyncToAsync

    SyncToAsync.deadlock_context.set(False)
    return asyncio.run_coroutine_threadsafe(coro, loop)
