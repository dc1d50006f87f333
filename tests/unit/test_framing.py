"""Framing: 0x1E records and VarInt length prefixes, split anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalr_django.exceptions import MessageTooLargeError, ProtocolError
from signalr_django.protocol.framing import BinaryFramer, TextFramer, write_varint


def test_text_records_split_across_chunks() -> None:
    """A record may span chunks and a chunk may hold several records."""
    framer = TextFramer()
    assert framer.feed('{"a":1}\x1e{"b"') == ['{"a":1}']
    assert framer.feed(":2}\x1e\x1e") == ['{"b":2}', ""]
    assert framer.pending == 0


def test_text_limit_counts_utf8_bytes() -> None:
    """The limit is in bytes including the separator, as ASP.NET Core counts it."""
    framer = TextFramer(limit=10)
    assert framer.feed("é" * 4 + "\x1e") == ["éééé"]  # 8 bytes + separator
    assert framer.feed("ok\x1e" + "é" * 5 + "\x1e") == ["ok"]  # records before it still count
    with pytest.raises(MessageTooLargeError, match="maximum message size of 10B"):
        framer.raise_pending()
    with pytest.raises(MessageTooLargeError):
        framer.feed("more")


def test_text_limit_applies_to_unfinished_records() -> None:
    """A peer cannot make the server buffer an endless record."""
    framer = TextFramer(limit=100)
    assert framer.feed("x" * 200) == []
    with pytest.raises(MessageTooLargeError):
        framer.raise_pending()


def test_text_bytes_may_split_a_character() -> None:
    """POST bodies are bytes; a multi-byte character may straddle two chunks."""
    framer = TextFramer()
    data = '"é"\x1e'.encode()
    assert framer.feed_bytes(data[:2]) == []
    assert framer.feed_bytes(data[2:]) == ['"é"']
    with pytest.raises(ProtocolError):
        TextFramer().feed_bytes(b"\xff\xfe\x1e")


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="\x1e")), max_size=8),
    st.lists(st.integers(min_value=1, max_value=20), min_size=1),
)
def test_text_any_chunking_gives_the_same_records(records: list[str], cuts: list[int]) -> None:
    """However the stream is cut, the same records come out in order."""
    stream = "".join(r + "\x1e" for r in records)
    framer = TextFramer()
    out: list[str] = []
    pos = 0
    i = 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        out.extend(framer.feed(stream[pos : pos + size]))
        pos += size
        i += 1
    assert out == records


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (0x7F, b"\x7f"),
        (0x80, b"\x80\x01"),
        (0x3FFF, b"\xff\x7f"),
        (0x7FFFFFFF, b"\xff\xff\xff\xff\x07"),
    ],
)
def test_varint(length: int, encoded: bytes) -> None:
    """Little-endian 7-bit groups, as the MessagePack hub protocol frames records."""
    assert write_varint(length) == encoded


@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(min_value=1, max_value=50))
def test_binary_any_chunking(records: list[bytes], size: int) -> None:
    """Length-prefixed records survive any chunking."""
    stream = b"".join(write_varint(len(r)) + r for r in records)
    framer = BinaryFramer()
    out: list[bytes] = []
    for pos in range(0, len(stream), size):
        out.extend(framer.feed(stream[pos : pos + size]))
    assert out == records


def test_binary_rejects_oversized_prefixes() -> None:
    """A prefix over 5 bytes or 2 GB is a protocol error, and the limit applies early."""
    with pytest.raises(ProtocolError, match="2GB"):
        BinaryFramer().feed(b"\xff\xff\xff\xff\x7f")
    with pytest.raises(ProtocolError, match="2GB"):
        BinaryFramer().feed(b"\xff\xff\xff\xff\xff\x01")
    with pytest.raises(MessageTooLargeError):
        BinaryFramer(limit=100).feed(write_varint(1000) + b"x")
