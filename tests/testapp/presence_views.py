"""Views of the test project answering presence queries through the sync hub context."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, login
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from signalr_django import get_sync_hub_context

from .hubs import CapsHub


def _answer(answer: Any) -> dict[str, Any]:
    return dict(answer.as_dict())


@csrf_exempt
def presence(request: HttpRequest) -> JsonResponse:
    """Every presence query about CapsHub, for the user, group and connection asked about."""
    p = get_sync_hub_context(CapsHub).presence
    query = request.GET
    out: dict[str, Any] = {"count": _answer(p.connection_count())}
    if query.get("only") == "count":
        return JsonResponse(out)
    out["groups"] = _answer(p.groups())
    out["connections"] = _answer(p.connections())
    if "user" in query:
        out["userOnline"] = _answer(p.user_online(query["user"]))
        out["userCount"] = _answer(p.user_connection_count(query["user"]))
        out["userConnections"] = _answer(p.user_connections(query["user"]))
    if "group" in query:
        out["groupCount"] = _answer(p.group_member_count(query["group"]))
    if "connection" in query:
        out["connectionGroups"] = _answer(p.connection_groups(query["connection"]))
    return JsonResponse(out)


@csrf_exempt
def close(request: HttpRequest) -> JsonResponse:
    """Close a CapsHub connection wherever it is."""
    closed = get_sync_hub_context(CapsHub).close_connection(
        request.GET["id"],
        reason=request.GET.get("reason") or None,
        allow_reconnect=request.GET.get("reconnect") == "1",
    )
    return JsonResponse({"closed": closed})


@csrf_exempt
def make_staff(request: HttpRequest) -> JsonResponse:
    """Create (or fetch) a staff user and log the session in."""
    user, _ = get_user_model().objects.get_or_create(username=request.GET["name"])
    user.is_staff = True
    user.save()
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"id": str(user.pk)})
