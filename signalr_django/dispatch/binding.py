"""Argument binding: wire values -> the types a hub method's annotations ask for.

A converter is built once per parameter when the hub is described, so an invocation pays
only for the conversions its parameters need; unannotated and `Any` parameters cost nothing.
Every failure raises BindingError, which fails the one invocation (never the connection):
the converters check what they can, and `converter_for` wraps the outermost one so that
anything else a hostile value provokes (OverflowError from a 400-digit integer given to a
`float`, TypeError from unhashable items of a `set`, RecursionError, an exception from a
dataclass's `__post_init__` or a pydantic validator) becomes a BindingError too.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import decimal
import enum
import inspect
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import BindingError
from ..protocol.values import camel_case

Converter = Callable[[Any], Any]


def _fail(expected: str, value: Any) -> BindingError:
    return BindingError(f"Expected {expected}, got {type(value).__name__}.")


def _str(value: Any) -> str:
    if type(value) is str:
        return value
    raise _fail("a string", value)


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise _fail("an integer", value)


def _float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise BindingError("The number is too large for a float.") from None
    raise _fail("a number", value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _fail("a boolean", value)


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BindingError("Expected base64 text.") from None
    raise _fail("base64 text", value)


def _parse_iso(parser: Callable[[str], Any], what: str) -> Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parser(value)
            except ValueError:
                raise BindingError(f"Expected an ISO 8601 {what}.") from None
        raise _fail(f"an ISO 8601 {what}", value)

    return convert


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    result: dt.datetime = _parse_iso(dt.datetime.fromisoformat, "date and time")(value)
    return result


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            raise BindingError("Expected a UUID.") from None
    if isinstance(value, bytes) and len(value) == 16:
        return uuid.UUID(bytes=value)
    raise _fail("a UUID", value)


# .NET's System.Decimal: 96-bit integers scaled by up to 28 decimal places. Larger (or
# non-finite) values are refused rather than handed to the hub: `int()` or `f"{d:f}"` of
# Decimal("1e999999999") would take the worker's memory.
_DECIMAL_MAX = decimal.Decimal(2**96 - 1)
_DECIMAL_MIN_EXPONENT = -28


def _decimal(value: Any) -> decimal.Decimal:
    result: decimal.Decimal
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            result = decimal.Decimal(value)
        except (decimal.InvalidOperation, ValueError):
            raise BindingError("Expected a decimal number.") from None
    elif isinstance(value, float):
        result = decimal.Decimal(repr(value))
    else:
        raise _fail("a decimal number", value)
    if not result.is_finite() or result.copy_abs() > _DECIMAL_MAX:
        raise BindingError("The number is outside the range of a decimal.")
    if result and result.adjusted() < _DECIMAL_MIN_EXPONENT:
        raise BindingError("The number is outside the range of a decimal.")
    return result


def _enum(cls: type[enum.Enum]) -> Converter:
    by_name = {name.lower(): member for name, member in cls.__members__.items()}

    def convert(value: Any) -> Any:
        try:
            return cls(value)
        except (ValueError, TypeError):
            pass
        if isinstance(value, str):
            member = by_name.get(value.lower())
            if member is not None:
                return member
        raise _fail(f"a {cls.__name__}", value)

    return convert


def _dataclass(cls: type) -> Converter:
    hints = typing.get_type_hints(cls)
    fields: dict[str, tuple[str, Converter | None]] = {}
    for f in dataclasses.fields(cls):
        conv = _converter_for(hints.get(f.name, Any))
        fields[f.name.lower()] = (f.name, conv)
        fields[camel_case(f.name).lower()] = (f.name, conv)
        fields[f.name.replace("_", "").lower()] = (f.name, conv)

    def convert(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise _fail(f"an object for {cls.__name__}", value)
        kwargs: dict[str, Any] = {}
        for key, item in value.items():
            entry = fields.get(str(key).lower())
            if entry is None:
                continue  # unknown properties are ignored, as System.Text.Json does
            name, conv = entry
            kwargs[name] = conv(item) if conv is not None else item
        try:
            return cls(**kwargs)
        except Exception as exc:  # missing fields, or __post_init__ refusing the values
            raise BindingError(f"Cannot build {cls.__name__}: {exc}") from None

    return convert


def _sequence(item: Converter | None, factory: Callable[[Any], Any]) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise _fail("an array", value)
        try:
            if item is None:
                return factory(value)
            return factory([item(v) for v in value])
        except TypeError:  # a set or frozenset of unhashable items
            raise BindingError("The array's items cannot be collected as asked.") from None

    return convert


def _mapping(key: Converter | None, item: Converter | None) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _fail("an object", value)
        try:
            return {(key(k) if key else k): (item(v) if item else v) for k, v in value.items()}
        except TypeError:  # unhashable keys (MessagePack maps may have any key)
            raise BindingError("The object's keys cannot be used as asked.") from None

    return convert


def _union(arms: list[Converter | None], optional: bool) -> Converter | None:
    if any(arm is None for arm in arms):
        return None

    def convert(value: Any) -> Any:
        if value is None and optional:
            return None
        for arm in arms:
            try:
                return arm(value)  # type: ignore[misc]
            except Exception:  # the arm's own checks, or whatever the value provoked
                continue
        raise BindingError(f"{type(value).__name__} fits none of the accepted types.")

    return convert


def _not_none(conv: Converter) -> Converter:
    def convert(value: Any) -> Any:
        if value is None:
            raise BindingError("null is not allowed here.")
        return conv(value)

    return convert


_SIMPLE: dict[Any, Converter] = {
    str: _str,
    int: _int,
    float: _float,
    bool: _bool,
    bytes: _bytes,
    dt.datetime: _datetime,
    dt.date: _parse_iso(dt.date.fromisoformat, "date"),
    dt.time: _parse_iso(dt.time.fromisoformat, "time"),
    uuid.UUID: _uuid,
    decimal.Decimal: _decimal,
}


def converter_for(annotation: Any) -> Converter | None:
    """A converter for values bound to `annotation`; None when values pass unchanged.

    The converter raises BindingError and nothing else (but MemoryError and the like).
    """
    inner = _converter_for(annotation)
    if inner is None:
        return None
    guarded = _guarded(inner)
    exact = annotation if annotation in _UNCHANGED else None
    if exact is None:
        return guarded

    def convert(value: Any) -> Any:
        # The common case, a value of exactly the annotated type, in one call.
        if type(value) is exact:
            return value
        return guarded(value)

    return convert


# Types whose converter returns a value of exactly that type unchanged.
_UNCHANGED = frozenset({str, int, bool})


def _guarded(conv: Converter) -> Converter:
    def convert(value: Any) -> Any:
        try:
            return conv(value)
        except BindingError:
            raise
        except RecursionError:
            raise BindingError("The value is nested too deeply.") from None
        except Exception as exc:
            raise BindingError(f"The value does not fit: {type(exc).__name__}.") from None

    return convert


def _converter_for(annotation: Any) -> Converter | None:
    """`converter_for` without the guard (nested converters are guarded by the outermost)."""
    if annotation is Any or annotation is object or annotation is inspect.Parameter.empty:
        return None
    simple = _SIMPLE.get(annotation)
    if simple is not None:
        return _not_none(simple)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        optional = type(None) in args
        arms = [_converter_for(a) for a in args if a is not type(None)]
        return _union(arms, optional)
    if origin is typing.Annotated:
        return _converter_for(args[0])
    if origin in (list, typing.Sequence, set, frozenset, tuple) or (
        origin is not None and _is_abc(origin, "Sequence", "Iterable", "Set")
    ):
        factory: Callable[[Any], Any] = origin if origin in (set, frozenset, tuple) else list
        item = _converter_for(args[0]) if args and args[-1] is not Ellipsis else None
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = _converter_for(args[0])
        return _not_none(_sequence(item, factory))
    if origin is dict or (origin is not None and _is_abc(origin, "Mapping")):
        key = _converter_for(args[0]) if args else None
        item = _converter_for(args[1]) if len(args) > 1 else None
        return _not_none(_mapping(key, item))
    if origin is typing.Literal:
        allowed = set(args)

        def literal(value: Any) -> Any:
            try:
                if value in allowed:
                    return value
            except TypeError:  # unhashable (a list or an object)
                pass
            raise _fail(f"one of {sorted(map(repr, allowed))}", value)

        return literal
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return _not_none(_enum(annotation))
        if dataclasses.is_dataclass(annotation):
            return _not_none(_dataclass(annotation))
        if annotation in (list, tuple, set, frozenset):
            return _not_none(_sequence(None, annotation))
        if annotation is dict:
            return _not_none(_mapping(None, None))
        validate = getattr(annotation, "model_validate", None)
        if callable(validate):  # pydantic models
            return _pydantic(validate)
        return _instance_of(annotation)
    return None


def _is_abc(origin: Any, *names: str) -> bool:
    import collections.abc as abc

    return any(origin is getattr(abc, name, None) for name in names)


def _pydantic(validate: Callable[[Any], Any]) -> Converter:
    def convert(value: Any) -> Any:
        try:
            return validate(value)
        except ValueError as exc:
            raise BindingError(str(exc)) from None

    return convert


def _instance_of(cls: type) -> Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        raise _fail(cls.__name__, value)

    return convert
