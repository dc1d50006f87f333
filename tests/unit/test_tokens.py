"""Connection tokens and access tokens: signed, bound, and readable by any worker."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from signalr_django.auth import TokenUser, create_access_token, signed_token_authenticator
from signalr_django.transports.negotiate import (
    make_connection_token,
    new_connection_id,
    read_connection_token,
)


def test_connection_ids_are_22_random_characters() -> None:
    """16 random bytes, base64url without padding, as ASP.NET Core makes them."""
    ids = {new_connection_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 22 and "=" not in i for i in ids)


def test_tokens_round_trip_and_bind_the_user_and_owner() -> None:
    """A token names its connection, flags and owner; another user cannot use it."""
    token = make_connection_token("abc", "7", stateful=True, owner="asgi.worker!x")
    read = read_connection_token(token, "7")
    assert read is not None
    assert (read.connection_id, read.stateful, read.owner) == ("abc", True, "asgi.worker!x")
    assert abs(read.issued - time.time()) < 5
    assert read_connection_token(token, "8") is None  # another user
    assert read_connection_token(token, "") is None  # anonymous
    assert read_connection_token(token + "x", "7") is None  # forged
    parts = token.split(".")
    parts[2] = "n"  # flip the stateful flag
    assert read_connection_token(".".join(parts), "7") is None
    for junk in ("", "a.b", "a.zz.n..sig", "." * 4, "x" * 500):
        assert read_connection_token(junk, "7") is None


def test_a_remembered_token_is_not_trusted_under_another_secret_key(settings: Any) -> None:
    """Verified tokens are remembered per SECRET_KEY: a new key invalidates the old tokens."""
    token = make_connection_token("abc", "7")
    assert read_connection_token(token, "7") is not None
    assert read_connection_token(token, "7") is not None  # remembered
    settings.SECRET_KEY = "another secret key, long enough for Django's checks to accept it"
    assert read_connection_token(token, "7") is None
    assert read_connection_token(make_connection_token("abc", "7"), "7") is not None


def test_the_query_parameters_are_read_as_parse_qsl_reads_them() -> None:
    """The plain `?id=TOKEN` fast path agrees with `parse_qsl` on every kind of query."""
    from urllib.parse import parse_qsl

    from signalr_django.transports.http import query_params

    queries = [b"", b"id=abc.def", b"id=&x=1", b"id", b"a=1&a=2", b"=x", b"id=a=b", b"&&id=z&"]
    queries += [b"id=a%2Eb", b"id=a+b", b"id=a;b=c", b"id=\xe9", b"negotiateVersion=1&_=17"]
    for query in queries:
        expected = dict(parse_qsl(query.decode("latin-1")))
        assert query_params({"query_string": query}) == expected, query


@pytest.mark.django_db
async def test_embedded_access_tokens_need_no_database() -> None:
    """The redirect's token carries the user; it expires on its own clock."""
    user: Any = SimpleNamespace(
        pk=42,
        get_username=lambda: "ada",
        is_staff=True,
        is_superuser=False,
        get_all_permissions=lambda: {"app.view_thing"},
    )
    token = create_access_token(user, embed=True, max_age=60)
    found = await signed_token_authenticator({}, token)
    assert isinstance(found, TokenUser)
    assert (found.pk, found.get_username(), found.is_staff) == ("42", "ada", True)
    assert found.has_perm("app.view_thing") and not found.has_perm("app.delete_thing")
    expired = create_access_token(user, embed=True, max_age=-1)
    assert await signed_token_authenticator({}, expired) is None
    assert await signed_token_authenticator({}, "not a token") is None
