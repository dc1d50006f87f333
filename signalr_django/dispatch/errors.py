"""The exact error texts ASP.NET Core sends, so clients and their tests see the same words."""

from __future__ import annotations

from ..exceptions import BindingError, HubException, ProtocolError

CONNECTION_ERROR = "Connection closed with an error."


def exception_name(exc: BaseException) -> str:
    """The type name shown after a prefix; protocol and binding errors use .NET's name."""
    if isinstance(exc, ProtocolError | BindingError):
        return "InvalidDataException"
    return type(exc).__name__


def build_error(prefix: str, exc: BaseException, detailed: bool) -> str:
    """`prefix`, plus `Type: message` when detailed errors are on or `exc` is a HubException."""
    if detailed or isinstance(exc, HubException):
        return f"{prefix} {exception_name(exc)}: {exc}"
    return prefix


def invoke_failed(target: str) -> str:
    """Prefix for errors raised by a hub method."""
    return f"An unexpected error occurred invoking '{target}' on the server."


def bind_failed(target: str) -> str:
    """Prefix for unknown methods and arguments that do not fit."""
    return f"Failed to invoke '{target}' due to an error on the server."


def unauthorized(target: str) -> str:
    """The text for a method the user may not call (no trailing period, as in ASP.NET)."""
    return f"Failed to invoke '{target}' because user is unauthorized"


STREAM_FAILED = "An error occurred on the server while streaming results."
METHOD_DOES_NOT_EXIST = "Method does not exist."
BINDING_TYPES = (
    "Error binding arguments. Make sure that the types of the provided values match the "
    "types of the hub method being invoked."
)


def streaming_mismatch(target: str) -> str:
    """A plain Invocation of an async-generator method."""
    return (
        f"The client attempted to invoke the streaming '{target}' method with a "
        "non-streaming invocation."
    )


def non_streaming_mismatch(target: str) -> str:
    """A StreamInvocation of an ordinary method."""
    return (
        f"The client attempted to invoke the non-streaming '{target}' method with a "
        "streaming invocation."
    )


def not_a_stream(name: str) -> str:
    """A streaming method returned something that cannot be iterated asynchronously."""
    return (
        f"The value returned by the streaming method '{name}' is not a ChannelReader<> or "
        "IAsyncEnumerable<>."
    )
