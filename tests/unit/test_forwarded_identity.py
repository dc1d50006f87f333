"""The identity a forwarding worker signs for the owner: bound, short-lived, unforgeable."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Permission
from django.core import signing
from django.test import override_settings

from signalr_django.auth import TokenUser
from signalr_django.transports import identity
from signalr_django.transports.identity import SALT, read_identity, sign_identity
from signalr_django.transports.negotiate import user_key


def test_anonymous_round_trip() -> None:
    signed = sign_identity(AnonymousUser(), "r1", "hub")
    found = read_identity(signed, "r1", "hub")
    assert found is not None and found.user_key == "" and found.kind == identity.ANONYMOUS


async def test_anonymous_resolves_to_anonymous_user() -> None:
    found = read_identity(sign_identity(None, "r1", "hub"), "r1", "hub")
    assert found is not None
    assert isinstance(await found.user(), AnonymousUser)


async def test_token_users_come_back_whole_without_a_database() -> None:
    """An embedded-token user is rebuilt from the snapshot, permissions included."""
    user = TokenUser({"u": "42", "n": "ada", "s": True, "su": False, "p": ["app.view_thing"]})
    found = read_identity(sign_identity(user, "r", "hub"), "r", "hub")
    assert found is not None and found.user_key == "42" == user_key(user)
    rebuilt = await found.user()
    assert isinstance(rebuilt, TokenUser)
    assert (rebuilt.pk, rebuilt.username, rebuilt.is_staff) == ("42", "ada", True)
    assert rebuilt.has_perm("app.view_thing") and not rebuilt.has_perm("app.other")


async def test_other_user_objects_become_token_users() -> None:
    """A custom authenticator's user: key, name and flags travel; no permissions."""
    user: Any = SimpleNamespace(
        pk=7, is_authenticated=True, get_username=lambda: "bot", is_staff=False
    )
    found = read_identity(sign_identity(user, "r", "hub"), "r", "hub")
    assert found is not None and found.user_key == "7"
    rebuilt = await found.user()
    assert isinstance(rebuilt, TokenUser) and rebuilt.get_username() == "bot"


@pytest.mark.django_db(transaction=True)
async def test_model_users_are_loaded_by_the_owner_only_when_needed() -> None:
    """The key suffices for every request; the model instance is fetched on demand."""
    model = get_user_model()

    def make() -> Any:
        user = model.objects.create(username="grace")
        user.user_permissions.add(Permission.objects.get(codename="view_user"))
        return user

    from asgiref.sync import sync_to_async

    user = await sync_to_async(make)()
    signed = sign_identity(user, "r", "hub")
    payload = signing.loads(signed, salt=SALT)
    assert payload == {"k": "m", "u": str(user.pk), "r": "r", "h": "hub"}  # no snapshot
    found = read_identity(signed, "r", "hub")
    assert found is not None and found.user_key == str(user.pk)
    loaded = await found.user()
    assert isinstance(loaded, model) and loaded.pk == user.pk
    assert await sync_to_async(loaded.has_perm)("auth.view_user")

    def deactivate() -> None:
        model.objects.filter(pk=user.pk).update(is_active=False)

    await sync_to_async(deactivate)()
    assert await found.user() is None  # gone or inactive: no connection is started for it


def test_bound_to_its_request_and_hub() -> None:
    signed = sign_identity(AnonymousUser(), "r1", "hub")
    assert read_identity(signed, "r2", "hub") is None  # replayed onto another request
    assert read_identity(signed, "r1", "other-hub") is None


def test_unsigned_forged_and_malformed_are_refused() -> None:
    user = TokenUser({"u": "1", "n": "root", "su": True})
    signed = sign_identity(user, "r", "hub")
    assert read_identity(None, "r", "hub") is None  # unsigned (no identity at all)
    assert read_identity("", "r", "hub") is None
    assert read_identity(signed + "x", "r", "hub") is None
    assert read_identity(signed.replace(":", ";", 1), "r", "hub") is None
    assert read_identity("x" * 20_000, "r", "hub") is None
    assert read_identity(12, "r", "hub") is None
    # Signed with another key (another deployment, or an attacker without SECRET_KEY).
    with override_settings(SECRET_KEY="another-key-entirely-0123456789"):
        foreign = sign_identity(user, "r", "hub")
    assert read_identity(foreign, "r", "hub") is None
    # Signed with the right key for another purpose (salt), e.g. an access token.
    other_use = signing.dumps({"k": "t", "d": {"u": "1"}, "r": "r", "h": "hub"})
    assert read_identity(other_use, "r", "hub") is None
    # Well signed but nonsense inside.
    for payload in ({"k": "m", "r": "r", "h": "hub"}, {"k": "zz", "r": "r", "h": "hub"}, [1]):
        assert read_identity(signing.dumps(payload, salt=SALT), "r", "hub") is None


def test_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    signed = sign_identity(AnonymousUser(), "r", "hub")
    later = time.time() + identity.MAX_AGE + 1
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert read_identity(signed, "r", "hub") is None
