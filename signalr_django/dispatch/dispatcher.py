"""The hub dispatcher: routes each inbound message of a connection.

The read loop hands messages over one at a time, in order. Invocations run in their own
task so the read loop keeps serving Pings, stream items and cancellations while a hub
method awaits; `MAXIMUM_PARALLEL_INVOCATIONS_PER_CLIENT` (default 1) bounds how many run
at once, and a further invocation waits in a short per-connection queue (in order) while
the transport stops reading the socket (HubConnection.queue_invocation). The read loop
itself goes on, so it still sees the transport close. Streaming invocations and methods
with client-to-server streams take no slot; their own caps
(`MAXIMUM_PARALLEL_STREAMS_PER_CLIENT`, `MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT`) bound
them instead: the invocation over a cap gets an error Completion and nothing else changes.

Hub filters (dispatch/filtering.py), when a hub has any, wrap each method call; without
them the method is called directly, as before.

Failures the client causes (arguments that do not bind, a cap reached, a client that left
with client results pending) log one rate-limited WARNING line (`core.logs`); exceptions a
hub method raises unexpectedly log with their traceback, for the developer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from time import perf_counter
from typing import Any

from channels.db import database_sync_to_async

from ..auth import check_requirement
from ..core.connection import TRACKABLE, HubConnection
from ..core.logs import safe_id, warn_limited
from ..core.results import ConnectionGoneError, InvocationScope, current_scope
from ..core.streams import UploadStream
from ..exceptions import BindingError, HubException, LimitExceededError, ProtocolError
from ..filters.base import HubInvocationContext, InvokeNext
from ..metrics.counters import METRICS, MethodStats
from ..protocol import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HubMessage,
    Invocation,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
)
from . import errors
from .filtering import FilterPipeline, build_pipeline
from .methods import MethodDescriptor, describe_hub, normalize

logger = logging.getLogger(__name__)

MAX_ID_LENGTH = 1024
MAX_CACHED_TARGETS = 256

_background: set[asyncio.Task[None]] = set()


def _spawn(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[None]:
    """Start a task and hold a reference until it ends (the loop keeps only weak ones)."""
    task: asyncio.Task[None] = loop.create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


def _start_run(loop: asyncio.AbstractEventLoop, coro: Any) -> None:
    """Start an invocation (`HubDispatcher._run`), held in `_background` until it ends.

    `_run` lets go of its own task as it ends, which spares a done-callback (one more
    event-loop callback per invocation). A task cancelled before it ever ran would stay
    held; nothing cancels these tasks but the event loop's own shutdown.
    """
    _background.add(loop.create_task(coro))


_sync_runners: dict[Callable[..., Any], Callable[..., Any]] = {}


def _sync_runner(descriptor: MethodDescriptor) -> Callable[..., Any]:
    runner = _sync_runners.get(descriptor.func)
    if runner is None:
        runner = database_sync_to_async(
            descriptor.func, thread_sensitive=descriptor.thread_sensitive
        )
        _sync_runners[descriptor.func] = runner
    return runner


class ClientClosed(Exception):
    """The client sent a Close message."""

    def __init__(self, error: str | None) -> None:
        super().__init__(error or "")
        self.error = error


class HubDispatcher:
    """Dispatches the messages of every connection of one hub class."""

    def __init__(self, hub_cls: type) -> None:
        self.hub_cls = hub_cls
        self.methods = describe_hub(hub_cls)
        # Hub filters (dispatch/filtering.py), set by the hub's handler from the settings;
        # None while no filter wraps invocations, so invocations call the method directly.
        self.filters: FilterPipeline | None = None
        self.invoke_chains: dict[Callable[..., Any], InvokeNext] | None = None
        # Per-method invocation statistics (SIGNALR["METRICS"]), by method name.
        self.stats: dict[str, MethodStats] = {}
        # The targets clients spell, as received, for the methods they name (a lookup
        # instead of normalising each time); at most MAX_CACHED_TARGETS spellings.
        self._targets: dict[str, MethodDescriptor] = {}

    def use_filters(self, filters: tuple[Any, ...]) -> None:
        """Chain `filters` (outermost first) around this hub's methods and lifecycle hooks."""
        if self.filters is not None and self.filters.filters == filters:
            return
        pipeline = build_pipeline(filters, self.methods, _sync_runner) if filters else None
        self.filters = pipeline
        self.invoke_chains = pipeline.invoke if pipeline is not None else None

    def new_hub(self, connection: HubConnection) -> Any:
        """A fresh hub instance bound to `connection` (one per call, as in ASP.NET Core)."""
        hub = self.hub_cls()
        hub._bind(connection, connection.caller_context)
        return hub

    async def dispatch(self, connection: HubConnection, message: HubMessage) -> None:
        """Handle one inbound message; raises ClientClosed when the client said goodbye."""
        kind = type(message)
        reconnect = connection.reconnect
        if reconnect is not None:
            if kind in TRACKABLE:
                if not reconnect.should_process():
                    return  # replayed after a reconnect: already handled
            elif kind is Ack:
                reconnect.ack(message.sequence_id)  # type: ignore[union-attr]
                return
            elif kind is Sequence:
                reconnect.sequence(message.sequence_id)  # type: ignore[union-attr]
                return
        if kind is Invocation:
            await self._invoke(connection, message)  # type: ignore[arg-type]
        elif kind is Ping:
            connection.client_pinged = True
        elif kind is StreamItem:
            await self._stream_item(connection, message)  # type: ignore[arg-type]
        elif kind is Completion:
            self._completion(connection, message)  # type: ignore[arg-type]
        elif kind is StreamInvocation:
            await self._invoke(connection, message)  # type: ignore[arg-type]
        elif kind is CancelInvocation:
            self._cancel(connection, message.invocation_id)  # type: ignore[union-attr,arg-type]
        elif kind is Close:
            raise ClientClosed(message.error)  # type: ignore[union-attr]
        # Ack and Sequence without stateful reconnect, and unknown kinds, are ignored.

    # -- invocations ---------------------------------------------------------------------

    async def _invoke(
        self, connection: HubConnection, message: Invocation | StreamInvocation
    ) -> None:
        target = message.target
        invocation_id = message.invocation_id
        if invocation_id is not None and len(invocation_id) > MAX_ID_LENGTH:
            # The spec lets servers limit id lengths; an id is echoed in every reply.
            raise ProtocolError(f"Invocation ID longer than {MAX_ID_LENGTH} characters.")
        streaming = type(message) is StreamInvocation
        descriptor = self._targets.get(target)
        if descriptor is None:
            descriptor = self.methods.get(normalize(target))
            if descriptor is not None and len(self._targets) < MAX_CACHED_TARGETS:
                self._targets[target] = descriptor
        if descriptor is None:
            if METRICS.enabled:  # the client's target is not a label: unbounded
                METRICS.count_invocation(connection.hub_cls, UNKNOWN_METHOD, "not_found", -1.0)
            if invocation_id:
                error = f"{errors.bind_failed(target)} HubException: {errors.METHOD_DOES_NOT_EXIST}"
                await connection.send(Completion(invocation_id, error))
            return
        if descriptor.is_stream != streaming:
            _count_refused(connection, descriptor, "bind_error")
            if invocation_id:
                text = (
                    errors.non_streaming_mismatch(target)
                    if streaming
                    else errors.streaming_mismatch(target)
                )
                await connection.send(Completion(invocation_id, text))
            return
        stream_ids = message.stream_ids or ()
        if len(stream_ids) != descriptor.stream_count:
            _count_refused(connection, descriptor, "bind_error")
            if invocation_id:
                text = (
                    f"{errors.invoke_failed(target)} HubException: Client sent "
                    f"{len(stream_ids)} stream(s), Hub method expects "
                    f"{descriptor.stream_count}."
                )
                await connection.send(Completion(invocation_id, text))
            return
        if descriptor.authorization is not None and not await check_requirement(
            connection.user, descriptor.authorization
        ):
            _count_refused(connection, descriptor, "unauthorized")
            if invocation_id:
                await connection.send(Completion(invocation_id, errors.unauthorized(target)))
            return
        arguments = message.arguments
        uploads: list[tuple[str, UploadStream]] | None = None
        if descriptor.needs_binding or len(arguments) != descriptor.max_args:
            try:
                arguments, uploads = self._bind(connection, descriptor, arguments, stream_ids)
            except BindingError as exc:
                _count_refused(connection, descriptor, "bind_error")
                warn_limited(
                    "binding",
                    "Arguments of '%s' on connection %s do not bind: %s",
                    descriptor.name,
                    safe_id(connection.connection_id),
                    exc,
                    target=logger,
                )
                if invocation_id:
                    detailed = connection.options.ENABLE_DETAILED_ERRORS
                    error = errors.build_error(errors.bind_failed(target), exc, detailed)
                    await connection.send(Completion(invocation_id, error))
                return
        if uploads:
            streams = connection.streams_in
            if streams is None:
                streams = connection.streams_in = {}
            limit = connection.options.MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT
            if limit is not None and len(streams) + len(uploads) > limit:
                _count_refused(connection, descriptor, "limit")
                await self._refuse(
                    connection,
                    target,
                    invocation_id,
                    LimitExceededError(
                        "Too many client-to-server streams open on this connection",
                        "MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT",
                        limit,
                    ),
                )
                return
            for stream_id, stream in uploads:
                streams[stream_id] = stream
        loop = asyncio.get_running_loop()
        if streaming:
            assert invocation_id is not None
            outgoing = connection.streams_out
            if outgoing is None:
                outgoing = connection.streams_out = {}
            if invocation_id in outgoing:
                text = f"Invocation ID '{invocation_id}' is already in use."
                await connection.send(Completion(invocation_id, text))
                return
            limit = connection.options.MAXIMUM_PARALLEL_STREAMS_PER_CLIENT
            if limit is not None and len(outgoing) >= limit:
                if uploads:
                    self._drop_uploads(connection, uploads)
                _count_refused(connection, descriptor, "limit")
                await self._refuse(
                    connection,
                    target,
                    invocation_id,
                    LimitExceededError(
                        "Too many server-to-client streams running on this connection",
                        "MAXIMUM_PARALLEL_STREAMS_PER_CLIENT",
                        limit,
                    ),
                )
                return
            outgoing[invocation_id] = _spawn(
                loop,
                self._run_stream(connection, descriptor, arguments, invocation_id, target, uploads),
            )
            return
        uses_slot = not uploads
        if uses_slot and not connection.try_take_slot():

            def start() -> None:
                _start_run(
                    loop,
                    self._run(connection, descriptor, arguments, invocation_id, target, None, True),
                )

            await connection.queue_invocation(start)
            return
        _start_run(
            loop,
            self._run(connection, descriptor, arguments, invocation_id, target, uploads, uses_slot),
        )

    @staticmethod
    async def _refuse(
        connection: HubConnection,
        target: str,
        invocation_id: str | None,
        exc: LimitExceededError,
    ) -> None:
        """An invocation over a per-connection cap: its error Completion and a warning."""
        METRICS.count_limit(exc.setting)
        warn_limited(
            "cap",
            "Connection %s: '%s' refused: %s",
            safe_id(connection.connection_id),
            target,
            exc,
            target=logger,
        )
        if invocation_id:
            detailed = connection.options.ENABLE_DETAILED_ERRORS
            error = errors.build_error(errors.bind_failed(target), exc, detailed)
            await connection.send(Completion(invocation_id, error))

    def _bind(
        self,
        connection: HubConnection,
        descriptor: MethodDescriptor,
        arguments: list[Any],
        stream_ids: Any,
    ) -> tuple[list[Any], list[tuple[str, UploadStream]] | None]:
        count = len(arguments)
        if count < descriptor.min_args or (
            descriptor.max_args is not None and count > descriptor.max_args
        ):
            expected = descriptor.max_args if descriptor.max_args is not None else count
            raise BindingError(
                f"Invocation provides {count} argument(s) but target expects {expected}."
            )
        bound: list[Any] = []
        uploads: list[tuple[str, UploadStream]] = []
        values = iter(arguments)
        streams = iter(stream_ids)
        capacity = connection.options.STREAM_BUFFER_CAPACITY
        provided = 0
        for param in descriptor.parameters:
            if param.is_stream:
                stream = UploadStream(capacity, param.item_convert)
                uploads.append((next(streams), stream))
                bound.append(stream)
                continue
            if provided >= count:
                break
            value = next(values)
            provided += 1
            if param.convert is not None:
                try:
                    value = param.convert(value)
                except Exception:  # converters raise BindingError; anything else is one too
                    raise BindingError(errors.BINDING_TYPES) from None
            bound.append(value)
        bound.extend(values)  # *args
        return bound, uploads or None

    async def _run(
        self,
        connection: HubConnection,
        descriptor: MethodDescriptor,
        arguments: list[Any],
        invocation_id: str | None,
        target: str,
        uploads: list[tuple[str, UploadStream]] | None,
        uses_slot: bool,
    ) -> None:
        scope = InvocationScope(connection, holds_slot=uses_slot)
        token = current_scope.set(scope)
        started = perf_counter() if METRICS.enabled else 0.0
        outcome = "ok"
        try:
            hub = self.new_hub(connection)
            chains = self.invoke_chains
            if chains is None:
                if descriptor.is_async:
                    result = await descriptor.func(hub, *arguments)
                else:
                    result = await _sync_runner(descriptor)(hub, *arguments)
            else:
                result = await chains[descriptor.func](
                    HubInvocationContext(
                        hub.context, hub, descriptor.func, descriptor.name, arguments
                    )
                )
            if invocation_id is not None:
                await connection.send(Completion(invocation_id, result=result))
        except Exception as exc:
            outcome = _outcome(exc)
            _log_failure(connection, descriptor.name, exc, invocation_id is None)
            if invocation_id is not None:
                detailed = connection.options.ENABLE_DETAILED_ERRORS
                error = errors.build_error(errors.invoke_failed(target), exc, detailed)
                await connection.send(Completion(invocation_id, error))
        finally:
            if started:
                stats = self.stats.get(descriptor.name)
                if stats is None:
                    stats = self.stats[descriptor.name] = METRICS.method_stats(
                        self.hub_cls, descriptor.name
                    )
                stats.record(outcome, perf_counter() - started)
            current_scope.reset(token)
            if uses_slot and not scope.released:
                connection.release_slot()
            if uploads:
                self._drop_uploads(connection, uploads)
            _background.discard(asyncio.current_task())

    async def _run_stream(
        self,
        connection: HubConnection,
        descriptor: MethodDescriptor,
        arguments: list[Any],
        invocation_id: str,
        target: str,
        uploads: list[tuple[str, UploadStream]] | None,
    ) -> None:
        """Obtain the stream (through the filters), then send its items.

        Filters wrap obtaining the stream, as in ASP.NET Core: they see the async iterator
        the method returns (and may wrap or replace it), not its items. What fails while
        obtaining it is reported like a failed invocation; what fails while iterating, as a
        failed stream.
        """
        iterator: AsyncIterator[Any] | None = None
        outcome = "ok"
        try:
            try:
                hub = self.new_hub(connection)
                chains = self.invoke_chains
                if chains is None:
                    produced = descriptor.func(hub, *arguments)
                else:
                    produced = await chains[descriptor.func](
                        HubInvocationContext(
                            hub.context, hub, descriptor.func, descriptor.name, arguments
                        )
                    )
                if hasattr(produced, "__await__"):
                    produced = await produced
            except Exception as exc:
                outcome = _outcome(exc)
                _log_failure(connection, descriptor.name, exc)
                detailed = connection.options.ENABLE_DETAILED_ERRORS
                error = errors.build_error(errors.invoke_failed(target), exc, detailed)
                await connection.send(Completion(invocation_id, error))
                return
            if not hasattr(produced, "__aiter__"):
                await connection.send(
                    Completion(invocation_id, errors.not_a_stream(descriptor.name))
                )
                return
            iterator = produced.__aiter__()
            async for item in iterator:
                await connection.send_stream_item(StreamItem(invocation_id, item))
            await connection.send(Completion(invocation_id))
        except asyncio.CancelledError:
            # The client cancelled (or the connection ended): a Completion without error.
            outcome = "cancelled"
            await connection.send(Completion(invocation_id))
        except Exception as exc:
            outcome = _outcome(exc)
            detailed = connection.options.ENABLE_DETAILED_ERRORS
            _log_failure(connection, descriptor.name, exc)
            await connection.send(
                Completion(invocation_id, errors.build_error(errors.STREAM_FAILED, exc, detailed))
            )
        finally:
            if METRICS.enabled:  # a stream's duration is its consumer's: not observed
                METRICS.count_invocation(connection.hub_cls, descriptor.name, outcome, -1.0)
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    logger.debug("Closing the stream of %s failed", descriptor.name, exc_info=True)
            if connection.streams_out is not None:
                connection.streams_out.pop(invocation_id, None)
            if uploads:
                self._drop_uploads(connection, uploads)

    @staticmethod
    def _drop_uploads(connection: HubConnection, uploads: list[tuple[str, UploadStream]]) -> None:
        """The hub method returned: its still-open client streams end here."""
        streams = connection.streams_in
        for stream_id, stream in uploads:
            stream.complete()
            if streams is not None:
                streams.pop(stream_id, None)

    # -- client streams and cancellation -------------------------------------------------

    async def _stream_item(self, connection: HubConnection, message: StreamItem) -> None:
        streams = connection.streams_in
        stream = streams.get(message.invocation_id) if streams else None
        if stream is not None:
            await stream.put(message.item)

    def _completion(self, connection: HubConnection, message: Completion) -> None:
        results = connection.pending_results
        if results is not None and results.resolve(
            message.invocation_id, message.error, message.result if message.has_result else None
        ):
            return
        streams = connection.streams_in
        stream = streams.pop(message.invocation_id, None) if streams else None
        if stream is not None:
            stream.complete(message.error)
        # Completions for unknown ids are ignored, as ASP.NET Core does.

    def _cancel(self, connection: HubConnection, invocation_id: str) -> None:
        outgoing = connection.streams_out
        task = outgoing.pop(invocation_id, None) if outgoing else None
        if task is not None:
            task.cancel()

    # -- connection end --------------------------------------------------------------------

    def connection_ended(self, connection: HubConnection) -> None:
        """Stop the connection's streams; running invocations finish on their own."""
        if connection.streams_out:
            for task in list(connection.streams_out.values()):
                task.cancel()
            connection.streams_out.clear()
        if connection.streams_in:
            for stream in connection.streams_in.values():
                stream.complete("Connection closed.")
            connection.streams_in.clear()
        if connection.pending_results is not None:
            connection.pending_results.fail_all(connection.connection_id)
        connection.drop_queued_invocations()


# The `method` label of invocations of a method the hub does not declare.
UNKNOWN_METHOD = "(unknown)"


def _count_refused(connection: HubConnection, descriptor: MethodDescriptor, outcome: str) -> None:
    """An invocation refused before the method ran (`signalr_invocations_total`)."""
    if METRICS.enabled:
        METRICS.count_invocation(connection.hub_cls, descriptor.name, outcome, -1.0)


def _outcome(exc: Exception) -> str:
    """The `outcome` label of an invocation that raised `exc`."""
    if isinstance(exc, LimitExceededError):
        return "limit"
    if isinstance(exc, HubException):
        return "hub_error"
    if isinstance(exc, ConnectionGoneError):
        return "client_gone"
    return "error"


def _log_failure(
    connection: HubConnection, method: str, exc: Exception, unanswered: bool = False
) -> None:
    """Log what a hub method raised: a traceback only for what the developer must fix.

    A HubException is the method's deliberate answer, sent to the caller (not logged; when
    the invocation expects no answer, one rate-limited line says what nobody will see); a
    cap reached and a client that disconnected before answering are the client's doing
    (one rate-limited line; nothing when the connection that ended is this one, which
    `fail_all` reported).
    """
    if isinstance(exc, LimitExceededError):
        METRICS.count_limit(exc.setting)
        warn_limited(
            "cap",
            "Connection %s: hub method %s failed: %s",
            safe_id(connection.connection_id),
            method,
            exc,
            target=logger,
        )
    elif isinstance(exc, HubException):
        if unanswered:
            warn_limited(
                "hub-exception",
                "Hub method %s raised for a non-blocking invocation: %s",
                method,
                exc,
                target=logger,
            )
    elif isinstance(exc, ConnectionGoneError):
        if not connection.closed:
            warn_limited(
                "client-gone",
                "Hub method %s (connection %s) awaited a client that disconnected",
                method,
                safe_id(connection.connection_id),
                target=logger,
            )
    else:
        logger.exception("Hub method %s failed", method)


_dispatchers: dict[type, HubDispatcher] = {}


def get_dispatcher(hub_cls: type) -> HubDispatcher:
    """The dispatcher of `hub_cls`, built once."""
    dispatcher = _dispatchers.get(hub_cls)
    if dispatcher is None:
        dispatcher = _dispatchers[hub_cls] = HubDispatcher(hub_cls)
    return dispatcher
