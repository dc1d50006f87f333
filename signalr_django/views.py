"""Negotiate on the regular Django site (WSGI), redirecting clients to a Daphne worker.

Put `negotiate_redirect("hubs/chat", ChatHub)` in the WSGI site's `urlpatterns` and point the
clients at the site (`withUrl("/hubs/chat")`). Negotiate then runs in Django with its usual
session authentication, and answers with the SignalR redirect: the URL of the least loaded
worker in `WORKERS` and a short-lived signed access token that carries the user, which the
worker accepts without a database round trip. The official clients follow the redirect and
connect to that worker. No worker is chosen twice for one connection and no session
affinity is needed anywhere.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from .auth import AUTH_ATTR, create_access_token, is_authenticated
from .conf import HubOptions, endpoint_options
from .core.load import load_key, pick_worker

REDIRECT_TOKEN_MAX_AGE = 60.0


def negotiate_redirect(
    route: str, hub_cls: type, worker_route: str | None = None, **options: Any
) -> URLPattern:
    """A URL pattern for `{route}/negotiate` on the WSGI site.

    Clients are sent to `{worker}/{worker_route}` (default: the same route) on a worker.
    `options` are endpoint options as for `map_hub` (those that matter here: AUTHORIZE,
    CORS_ALLOWED_ORIGINS, NEGOTIATE_RESPONSE_HOOK), checked now.
    """
    base = route.strip("/")
    target = (worker_route or route).strip("/")
    source = f"negotiate_redirect({route!r}, {hub_cls.__qualname__})"
    endpoint_options(hub_cls, options, source)

    @csrf_exempt
    def negotiate(request: HttpRequest) -> HttpResponse:
        return _negotiate(request, target, hub_cls, endpoint_options(hub_cls, options, source))

    return path(f"{base}/negotiate", negotiate, name=f"signalr-negotiate-{base}")


def _negotiate(
    request: HttpRequest, route: str, hub_cls: type, options: HubOptions
) -> HttpResponse:
    origin = request.headers.get("Origin")
    cors: dict[str, str] = {}
    if origin and origin in options.CORS_ALLOWED_ORIGINS:
        cors = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}
    if request.method == "OPTIONS" and cors:
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = (
            "Authorization, Content-Type, X-Requested-With, X-SignalR-User-Agent"
        )
        return _with(response, cors)
    if request.method != "POST":
        response = HttpResponse("Method Not Allowed", status=405, content_type="text/plain")
        response["Allow"] = "POST"
        return _with(response, cors)
    user: Any = getattr(request, "user", None)
    for requirement in (getattr(hub_cls, AUTH_ATTR, None), options.AUTHORIZE):
        if requirement is None:
            continue
        if not is_authenticated(user):
            response = HttpResponse("Unauthorized", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = "Bearer"
            return _with(response, cors)
        if (requirement.permissions and not user.has_perms(requirement.permissions)) or (
            requirement.test is not None and not requirement.test(user)
        ):
            return _with(HttpResponse("Forbidden", status=403, content_type="text/plain"), cors)
    workers = list(options.WORKERS)
    if not workers:
        message = "SIGNALR['WORKERS'] lists no worker to redirect to."
        return _with(HttpResponse(message, status=503, content_type="text/plain"), cors)
    from django.core.cache import caches

    loads = caches[options.LOAD_CACHE].get_many([load_key(url) for url in workers])
    worker = pick_worker(workers, loads)
    if worker is None:
        response = HttpResponse(
            "No SignalR worker is available; try again shortly.",
            status=503,
            content_type="text/plain",
        )
        response["Retry-After"] = "5"
        return _with(response, cors)
    body: dict[str, Any] = {"url": f"{worker.rstrip('/')}/{route}"}
    if is_authenticated(user):
        body["accessToken"] = create_access_token(user, embed=True, max_age=REDIRECT_TOKEN_MAX_AGE)
    response = JsonResponse(body)
    response["Cache-Control"] = "no-cache, no-store"
    for name, value in _hook_headers(request, user, options):
        if name == b"set-cookie":  # Django keeps cookies apart: one Set-Cookie each
            response.cookies.load(value.decode("latin-1"))
        else:
            response[name.decode("latin-1")] = value.decode("latin-1")
    return _with(response, cors)


def _hook_headers(
    request: HttpRequest, user: Any, options: HubOptions
) -> list[tuple[bytes, bytes]]:
    """What NEGOTIATE_RESPONSE_HOOK adds, given an ASGI-like scope of the request."""
    if options.NEGOTIATE_RESPONSE_HOOK is None:
        return []
    from asgiref.sync import async_to_sync

    from .transports.hooks import negotiate_headers

    scope: dict[str, Any] = {
        "type": "http",
        "method": request.method,
        "path": request.path,
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "headers": [
            (key.lower().encode("latin-1"), value.encode("latin-1"))
            for key, value in request.headers.items()
        ],
        "user": user,
        "session": getattr(request, "session", None),
        "django_request": request,
    }
    return async_to_sync(negotiate_headers)(options, scope, user)


def _with(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for key, value in headers.items():
        response[key] = value
    return response


__all__ = ["negotiate_redirect"]
