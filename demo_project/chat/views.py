"""The chat page, a password-less login, and a plain sync view that talks to the hub.

Logging in is only a way to give each browser a Django user: the hub then knows the
user from the session cookie, `context.user_identifier` is the user's primary key, and
private messages are addressed with `clients.user(<pk>)`.
"""

from __future__ import annotations

import threading
import time

from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from signalr_django import get_sync_hub_context

from .hubs import ChatHub

NAME_LIMIT = 30


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The login form for strangers; the chat for logged-in users."""
    if not request.user.is_authenticated:
        return render(request, "chat/login.html")
    users = get_user_model().objects.exclude(pk=request.user.pk).order_by("username")
    config = {
        "hubUrl": "/hubs/chat",
        "broadcastUrl": reverse("chat:broadcast"),
        "csrfToken": get_token(request),
        "me": {"id": str(request.user.pk), "name": request.user.get_username()},
        "users": [{"id": str(user.pk), "name": user.get_username()} for user in users],
    }
    return render(request, "chat/index.html", {"config": config, "users": config["users"]})


@require_POST
def login_view(request: HttpRequest) -> HttpResponse:
    """Log in as `name`, creating that user on first use (a demo has no passwords)."""
    name = request.POST.get("name", "").strip()
    error = None
    if not name or len(name) > NAME_LIMIT:
        error = f"Pick a name of 1-{NAME_LIMIT} characters."
    else:
        try:
            UnicodeUsernameValidator()(name)
        except ValidationError:
            error = "Use letters, digits and @/./+/-/_ only."
    if error is not None:
        return render(request, "chat/login.html", {"error": error, "name": name}, status=400)
    model = get_user_model()
    user, created = model.objects.get_or_create(username=name)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("chat:index")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """End the session; open hub connections keep the user they were opened with."""
    logout(request)
    return redirect("chat:index")


@require_POST
def broadcast(request: HttpRequest) -> JsonResponse:
    """Send one line to every client of the hub from ordinary synchronous Django code.

    This is what a WSGI view, a signal handler or a management command would write: no
    `async`, no `async_to_sync`. Under Daphne this view runs in a worker thread and the
    sync hub context hands the send over to the event loop that holds the connections.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Log in first."}, status=403)
    text = request.POST.get("text", "").strip()[:200] or (
        f"Hello everybody, it is {time.strftime('%H:%M:%S', time.gmtime())} UTC on the server."
    )
    meta = {
        "route": "server",
        "via": "a sync Django view",
        "thread": threading.current_thread().name,
        "by": request.user.get_username(),
    }
    get_sync_hub_context(ChatHub).clients.all.send("ReceiveMessage", "server", text, meta)
    return JsonResponse({"sent": text})
