"""One hub served on several URLs with per-endpoint options, and the views its tests use."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, login
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from signalr_django import map_hub
from signalr_django.auth import create_access_token

from .hubs import TestHub


class EndpointHub(TestHub):
    """TestHub's methods; its own lifetime manager, so its tests count only their clients."""


def affinity_cookie(scope: dict[str, Any], user: Any, headers: list[tuple[bytes, bytes]]) -> None:
    """A NEGOTIATE_RESPONSE_HOOK: a load balancer's affinity cookie and a custom header."""
    name = user.get_username() if getattr(user, "is_authenticated", False) else "anonymous"
    headers.append((b"set-cookie", b"affinity=worker-1; Path=/; HttpOnly"))
    headers.append((b"set-cookie", b"csrftoken=abc123; Path=/; SameSite=Lax"))
    headers.append((b"x-negotiated-for", name.encode()))


async def async_hook(scope: dict[str, Any], user: Any, headers: list[tuple[bytes, bytes]]) -> None:
    """An async hook."""
    headers.append((b"x-hook", b"async"))


def broken_hook(scope: dict[str, Any], user: Any, headers: list[tuple[bytes, bytes]]) -> None:
    """A hook that tries to split the response."""
    headers.append((b"x-bad", b"a\r\nSet-Cookie: injected=1"))


ROUTES = [
    # The same hub on two URLs: one WebSockets only, one long polling only for signed-in users.
    map_hub("hubs/ep/ws", EndpointHub, TRANSPORTS=["WebSockets"]),
    map_hub("hubs/ep/lp", EndpointHub, TRANSPORTS=["LongPolling"], AUTHORIZE=True),
    map_hub(
        "hubs/ep/admin",
        EndpointHub,
        AUTHORIZE={"permissions": ["auth.view_user"]},
        KEEP_ALIVE_INTERVAL=1,
    ),
    map_hub("hubs/ep/expiring", EndpointHub, CLOSE_ON_AUTHENTICATION_EXPIRATION=True),
    map_hub(
        "hubs/ep/stateful-expiring",
        EndpointHub,
        CLOSE_ON_AUTHENTICATION_EXPIRATION=True,
        ALLOW_STATEFUL_RECONNECTS=True,
    ),
    map_hub(
        "hubs/ep/hooked",
        EndpointHub,
        NEGOTIATE_RESPONSE_HOOK="tests.testapp.endpoints.affinity_cookie",
    ),
    map_hub("hubs/ep/async-hook", EndpointHub, NEGOTIATE_RESPONSE_HOOK=async_hook),
    map_hub("hubs/ep/broken-hook", EndpointHub, NEGOTIATE_RESPONSE_HOOK=broken_hook),
]


@csrf_exempt
def short_login(request: HttpRequest) -> JsonResponse:
    """Log `name` in with a session of `ttl` seconds and give a token of `ttl` seconds."""
    model = get_user_model()
    user, _ = model.objects.get_or_create(username=request.GET["name"])
    ttl = float(request.GET.get("ttl", "2"))
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session.set_expiry(int(ttl))
    token = create_access_token(user, embed=True, max_age=ttl)
    return JsonResponse({"id": str(user.pk), "token": token})
