"""Hostile values against every kind of annotation: BindingError or a value, nothing else.

A client controls the arguments of every invocation; whatever it sends must fail only
that invocation (BindingError becomes the binding-error Completion), never escape as
OverflowError, TypeError, ValueError or RecursionError and close the connection.
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import datetime as dt
import decimal
import enum
import uuid
from typing import Annotated, Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalr_django.dispatch.binding import converter_for
from signalr_django.exceptions import BindingError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    READ = 1
    WRITE = 2


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Checked:
    size: int

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("size must not be negative")


@dataclasses.dataclass
class Nested:
    points: list[Point]
    tags: set[str] = dataclasses.field(default_factory=set)
    meta: dict[str, float] = dataclasses.field(default_factory=dict)


ANNOTATIONS: list[Any] = [
    str,
    int,
    float,
    bool,
    bytes,
    dt.datetime,
    dt.date,
    dt.time,
    uuid.UUID,
    decimal.Decimal,
    Color,
    Level,
    Perm,
    Point,
    Checked,
    Nested,
    Literal["a", "b"],
    Literal[1, 2, 3],
    Literal[True],
    list[float],
    list[int],
    set[int],
    set[float],
    frozenset[str],
    set,
    frozenset,
    tuple[int, ...],
    tuple[float, str],
    list[list[list[float]]],
    dict[str, float],
    dict[int, set[int]],
    dict,
    abc.Sequence[float],
    abc.Mapping[str, Level],
    abc.Set[int],
    int | None,
    float | str,
    Point | None,
    list[Point] | dict[str, Point],
    Annotated[float, "meta"],
]

HUGE = 10**400


def _pairs_dict(pairs: list[tuple[Any, Any]]) -> Any:
    try:
        return dict(pairs)
    except TypeError:
        return {"x": [p[0] for p in pairs]}


# Wire values: what a JSON or MessagePack decoder can hand over.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([HUGE, -HUGE, 2**64, -(2**63) - 1, 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "1e999999999999999999",
            "1e-999999999999999999",
            "NaN",
            "sNaN",
            "-Infinity",
            "9999-12-31T23:59:59+23:59",
            "0001-01-01T00:00:00-23:59",
            "red",
            "HIGH",
        ]
    ),
    st.binary(max_size=20),
)
wire_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=5), children, max_size=4),
        # MessagePack maps may have keys of any type, unhashable ones included.
        st.lists(st.tuples(children, children), max_size=3).map(_pairs_dict),
    ),
    max_leaves=20,
)


def bind(annotation: Any, value: Any) -> None:
    converter = converter_for(annotation)
    assert converter is not None
    try:
        converter(value)
    except BindingError:
        pass


@pytest.mark.parametrize("annotation", ANNOTATIONS, ids=repr)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=wire_values)
def test_any_wire_value_binds_or_raises_binding_error(annotation: Any, value: Any) -> None:
    bind(annotation, value)


@pytest.mark.parametrize(
    ("annotation", "value"),
    [
        (float, HUGE),
        (float, [1, 2]),
        (list[float], [1.0, HUGE]),
        (dict[str, float], {"a": -HUGE}),
        (Point, {"x": HUGE, "y": 1}),
        (Point, {"x": 1}),
        (Checked, {"size": -1}),
        (Literal["a", "b"], ["a"]),
        (Literal["a", "b"], {"a": 1}),
        (Literal[1, 2], HUGE),
        (set[int], [[1], [2]]),
        (set, [[1], {"a": 1}]),
        (frozenset, [{}]),
        (set[int], HUGE),
        (dict[Any, int], {"a": "x"}),
        (Level, [1]),
        (Level, HUGE),
        (Perm, HUGE),
        (Color, {}),
        (decimal.Decimal, "1e999999999999999999"),
        (decimal.Decimal, "1e9999999999999999999999"),
        (decimal.Decimal, "NaN"),
        (decimal.Decimal, HUGE),
        (decimal.Decimal, "1e-40"),
        (float | int, [HUGE]),
        (list[list[list[float]]], [[[HUGE]]]),
        (dt.datetime, "9" * 5000),
    ],
    ids=repr,
)
def test_known_hostile_values_are_binding_errors(annotation: Any, value: Any) -> None:
    converter = converter_for(annotation)
    assert converter is not None
    with pytest.raises(BindingError):
        converter(value)


def test_deep_nesting_is_a_binding_error() -> None:
    deep: Any = 1.0
    for _ in range(100_000):
        deep = [deep]
    converter = converter_for(list)
    assert converter is not None
    converter(deep)  # unconverted items: no recursion at all
    converter = converter_for(list[Any])
    assert converter is not None
    converter(deep)


class Recursive:
    """A custom type whose check recurses without end (a broken user type)."""

    @classmethod
    def model_validate(cls, value: Any) -> Any:
        return cls.model_validate(value)


def test_recursion_in_a_custom_validator_is_a_binding_error() -> None:
    converter = converter_for(Recursive)
    assert converter is not None
    with pytest.raises(BindingError, match="nested too deeply"):
        converter({})


def test_valid_values_still_bind() -> None:
    def conv(annotation: Any, value: Any) -> Any:
        converter = converter_for(annotation)
        assert converter is not None
        return converter(value)

    assert conv(float, 10**300) == float(10**300)
    assert conv(set[int], [1, 2, 2]) == {1, 2}
    assert conv(Literal[1, 2], 2) == 2
    assert conv(decimal.Decimal, "79228162514264337593543950335") == decimal.Decimal(
        "79228162514264337593543950335"
    )
    assert conv(decimal.Decimal, 0) == 0
    assert conv(Checked, {"size": 3}) == Checked(3)
    assert conv(Perm, 3) == Perm.READ | Perm.WRITE
    assert conv(float | str, "x") == "x"
