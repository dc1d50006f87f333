"""Views of the test project: sync sends through the hub context, test users and tokens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import Permission
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from signalr_django import (
    BackplaneError,
    ClientResultError,
    ConnectionGoneError,
    get_sync_hub_context,
)
from signalr_django.auth import create_access_token

from .hubs import TestHub


@csrf_exempt
def broadcast(request: HttpRequest) -> HttpResponse:
    """A plain sync view that sends to hub clients."""
    ctx = get_sync_hub_context(TestHub)
    target = request.GET.get("target", "all")
    message = request.GET.get("message", "from view")
    try:
        _send(ctx, target, message, request)
    except BackplaneError as exc:
        return HttpResponse(f"backplane unavailable: {exc}", status=503)
    return HttpResponse("sent")


def _send(ctx: Any, target: str, message: str, request: HttpRequest) -> None:
    if target == "group":
        ctx.clients.group(request.GET["group"]).send("Receive", "view-group", message)
    elif target == "user":
        ctx.clients.user(request.GET["user"]).send("Receive", "view-user", message)
    elif target == "client":
        ctx.clients.client(request.GET["id"]).send("Receive", "view-client", message)
    else:
        ctx.clients.all.send("Receive", "view", message)


@csrf_exempt
def ask_client(request: HttpRequest) -> JsonResponse:
    """A plain sync view that asks one hub client for a result (sync hub context)."""
    client = get_sync_hub_context(TestHub).clients.client(request.GET["id"])
    try:
        value = client.invoke("GetMessage", request.GET.get("question", "?"), timeout=10)
    except ClientResultError as exc:
        return JsonResponse({"error": str(exc)}, status=502)
    except ConnectionGoneError as exc:
        return JsonResponse({"gone": str(exc)}, status=404)
    return JsonResponse({"value": value})


@csrf_exempt
def make_user(request: HttpRequest) -> JsonResponse:
    """Create (or fetch) a user; returns an access token and logs the session in."""
    model = get_user_model()
    name = request.GET["name"]
    user, _ = model.objects.get_or_create(username=name)
    if request.GET.get("perm") == "1":
        user.user_permissions.add(Permission.objects.get(codename="view_user"))
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"id": str(user.pk), "token": create_access_token(user)})
