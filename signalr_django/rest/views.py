"""The REST views: Azure SignalR Service's data-plane API (api-version 2022-06-01).

Each view checks, in order: that the API is configured, the HTTP method, the bearer token
(signature, expiry, audience = this URL), `api-version`, the hub name and the path and
query parameters, then runs one operation from `ops.py` and answers with the status code
the API specifies (202 for sends, 200/404 for existence checks, 200 or 204 for group
changes). Failures answer with an `ErrorDetail` JSON body (`code`, `message`, `target`),
except for HEAD, whose answers have no body.

The views are plain sync Django views, CSRF-exempt (callers authenticate with a token,
never with cookies), so they run on the WSGI site and on the workers alike.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..conf import hub_options
from ..exceptions import (
    BackplaneError,
    ConnectionNotFoundError,
    HubConfigurationError,
    LimitExceededError,
)
from . import ops
from .config import RestConfig, rest_config
from .token import TokenError, verify

logger = logging.getLogger(__name__)

API_VERSIONS = frozenset({"2022-06-01"})
# The API's patterns for hub names in a request (settings keep to letters, digits and "_")
# and for group names (not only whitespace).
REQUEST_HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_`,.\[\]]{0,127}$")
BLANK = re.compile(r"^\s+$")
# The API's own bound on group names; a hub's MAXIMUM_GROUP_NAME_LENGTH may be lower.
MAX_GROUP_LENGTH = 1024
MAX_ID_LENGTH = 1024
MAX_TARGET_LENGTH = 1024

Handler = Callable[..., HttpResponse]


class RestError(Exception):
    """An answer other than success: its status, ErrorDetail code, message and target."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}


def _error_response(request: HttpRequest, error: RestError) -> HttpResponse:
    detail: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.target is not None:
        detail["target"] = error.target
    response: HttpResponse
    if request.method == "HEAD":
        response = HttpResponse(status=error.status)
    else:
        response = JsonResponse(detail, status=error.status)
    # Azure's SDKs read the error code from this header (HEAD answers have no body).
    response["x-ms-error-code"] = error.code
    for name, value in error.headers.items():
        response[name] = value
    return response


def _bad(message: str, target: str) -> RestError:
    return RestError(400, "InvalidArgument", message, target)


# -- request checks --------------------------------------------------------------------------


def _config() -> RestConfig:
    try:
        config = rest_config()
    except HubConfigurationError as exc:
        # Reported by `manage.py check` as signalr.E040; callers only learn it is broken.
        logger.error("%s", exc)
        raise RestError(
            500, "InternalServerError", "The REST API is misconfigured on this site."
        ) from None
    if config is None:
        raise RestError(404, "NotFound", 'The REST API is off (settings.SIGNALR["REST_API"]).')
    return config


def _authenticate(request: HttpRequest, config: RestConfig) -> None:
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RestError(
            401,
            "Unauthorized",
            "An 'Authorization: Bearer <token>' header is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # The decoded path, quoted again so that a "?" or "#" in an id stays part of the path.
    path = quote(request.path, safe="/:@!$&'()*+,;=")
    audience = f"{request.scheme}://{request.get_host()}{path}"
    try:
        verify(token.strip(), config.keys, audience, config.leeway)
    except TokenError as exc:
        raise RestError(401, "Unauthorized", str(exc), headers=challenge) from None


def _check_version(request: HttpRequest) -> None:
    version = request.GET.get("api-version")
    if version is None:
        raise _bad("The 'api-version' query parameter is required (2022-06-01).", "api-version")
    if version not in API_VERSIONS:
        raise _bad(f"api-version '{version[:40]}' is not supported; use 2022-06-01.", "api-version")


def _hub(config: RestConfig, name: str) -> type:
    if not REQUEST_HUB_NAME.match(name):
        raise _bad(
            "A hub name starts with a letter and holds at most 128 letters, digits and "
            "underscores.",
            "hub",
        )
    hub = config.hubs.get(name.lower())
    if hub is None:
        raise RestError(404, "NotFound", f"No hub named '{name}' is served here.", "hub")
    return hub


def _text(value: str, what: str, limit: int | None) -> str:
    if not value or BLANK.match(value):
        raise _bad(f"The {what} must not be empty.", what)
    if limit is not None and len(value) > limit:
        raise _bad(f"The {what} is longer than {limit} characters.", what)
    return value


def _group(hub: type, group: str) -> str:
    limit = hub_options(hub).MAXIMUM_GROUP_NAME_LENGTH
    return _text(group, "group", min(MAX_GROUP_LENGTH, limit or MAX_GROUP_LENGTH))


def _user(hub: type, user: str) -> str:
    limit = hub_options(hub).MAXIMUM_USER_ID_LENGTH
    return _text(user, "user", min(MAX_ID_LENGTH, limit or MAX_ID_LENGTH))


def _connection(connection_id: str) -> str:
    return _text(connection_id, "connectionId", MAX_ID_LENGTH)


def _excluded(request: HttpRequest) -> list[str]:
    return [_connection(c) for c in request.GET.getlist("excluded")]


def _reason(request: HttpRequest) -> str | None:
    reason = request.GET.get("reason")
    if reason is not None and len(reason) > MAX_TARGET_LENGTH:
        raise _bad(f"The reason is longer than {MAX_TARGET_LENGTH} characters.", "reason")
    return reason or None


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: clients would fail to parse the message."""
    raise ValueError(f"{name} is not valid JSON")


def _payload(request: HttpRequest) -> tuple[str, list[Any]]:
    """The PayloadMessage body: `target` (required) and `arguments` (a list, default [])."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise RestError(
            413, "PayloadTooLarge", "The message is larger than this site accepts."
        ) from None
    try:
        message = json.loads(raw, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad("The body must be a JSON PayloadMessage.", "message") from None
    if not isinstance(message, dict):
        raise _bad('The body must be a JSON object {"target": ..., "arguments": [...]}.', "message")
    target = message.get("target")
    if not isinstance(target, str) or not target:
        raise _bad("'target' must be a non-empty string (the client method).", "target")
    if len(target) > MAX_TARGET_LENGTH:
        raise _bad(f"'target' is longer than {MAX_TARGET_LENGTH} characters.", "target")
    arguments = message.get("arguments")
    if arguments is None:
        arguments = []
    if not isinstance(arguments, list):
        raise _bad("'arguments' must be a JSON array.", "arguments")
    if message.get("rawBytes") is not None or message.get("rawOnly"):
        raise _bad("'rawBytes' and 'rawOnly' are not supported; send 'arguments'.", "rawBytes")
    return target, arguments


# -- the views ---------------------------------------------------------------------------------


def endpoint(**methods: Handler) -> Callable[..., HttpResponse]:
    """A view answering `methods` (name -> handler(request, hub, **path_params))."""
    allowed = ", ".join(sorted(methods))

    @csrf_exempt
    def view(request: HttpRequest, hub: str, **params: str) -> HttpResponse:
        try:
            config = _config()
            handler = methods.get(request.method or "")
            if handler is None:
                raise RestError(
                    405,
                    "MethodNotAllowed",
                    f"{request.method} is not allowed here; use {allowed}.",
                    headers={"Allow": allowed},
                )
            _authenticate(request, config)
            _check_version(request)
            return handler(request, _hub(config, hub), **params)
        except RestError as error:
            return _error_response(request, error)
        except ConnectionNotFoundError as exc:
            return _error_response(request, RestError(404, "NotFound", str(exc), "connectionId"))
        except (LimitExceededError, ValueError) as exc:
            return _error_response(request, _bad(str(exc), "message"))
        except (ops.IncompleteAnswer, BackplaneError, TimeoutError) as exc:
            logger.warning("REST %s %s: %s", request.method, request.path, exc)
            message = str(exc) or "The workers did not answer in time."
            unavailable = RestError(
                503, "ServiceUnavailable", message, headers={"Retry-After": "1"}
            )
            return _error_response(request, unavailable)

    return view


def _accepted() -> HttpResponse:
    return HttpResponse(status=202)


def _ok() -> HttpResponse:
    return HttpResponse(status=200)


def _no_content() -> HttpResponse:
    return HttpResponse(status=204)


def _exists(found: bool, what: str) -> HttpResponse:
    if found:
        return _ok()
    raise RestError(404, "NotFound", f"No such {what}.", what)


def _send_all(request: HttpRequest, hub: type) -> HttpResponse:
    target, arguments = _payload(request)
    ops.send_all(hub, target, arguments, _excluded(request))
    return _accepted()


def _close_all(request: HttpRequest, hub: type) -> HttpResponse:
    raise RestError(
        501,
        "NotImplemented",
        "Closing every connection of a hub is not offered; close connections one by one.",
    )


def _close_group(request: HttpRequest, hub: type, group: str) -> HttpResponse:
    raise RestError(
        501,
        "NotImplemented",
        "Closing a group's connections is not offered; close connections one by one.",
    )


def _send_connection(request: HttpRequest, hub: type, connection_id: str) -> HttpResponse:
    target, arguments = _payload(request)
    ops.send_connection(hub, _connection(connection_id), target, arguments)
    return _accepted()


def _connection_exists(request: HttpRequest, hub: type, connection_id: str) -> HttpResponse:
    return _exists(ops.connection_exists(hub, _connection(connection_id)), "connectionId")


def _close_connection(request: HttpRequest, hub: type, connection_id: str) -> HttpResponse:
    # As the service does, closing a connection that is not there is not an error.
    ops.close_connection(hub, _connection(connection_id), _reason(request))
    return _ok()


def _leave_all_groups(request: HttpRequest, hub: type, connection_id: str) -> HttpResponse:
    ops.remove_connection_from_all_groups(hub, _connection(connection_id))
    return _ok()


def _group_exists(request: HttpRequest, hub: type, group: str) -> HttpResponse:
    return _exists(ops.group_exists(hub, _group(hub, group)), "group")


def _send_group(request: HttpRequest, hub: type, group: str) -> HttpResponse:
    target, arguments = _payload(request)
    ops.send_group(hub, _group(hub, group), target, arguments, _excluded(request))
    return _accepted()


def _add_connection(
    request: HttpRequest, hub: type, group: str, connection_id: str
) -> HttpResponse:
    ops.add_connection_to_group(hub, _connection(connection_id), _group(hub, group))
    return _ok()


def _remove_connection(
    request: HttpRequest, hub: type, group: str, connection_id: str
) -> HttpResponse:
    ops.remove_connection_from_group(hub, _connection(connection_id), _group(hub, group))
    return _ok()


def _user_exists(request: HttpRequest, hub: type, user: str) -> HttpResponse:
    return _exists(ops.user_exists(hub, _user(hub, user)), "user")


def _send_user(request: HttpRequest, hub: type, user: str) -> HttpResponse:
    target, arguments = _payload(request)
    ops.send_user(hub, _user(hub, user), target, arguments)
    return _accepted()


def _close_user(request: HttpRequest, hub: type, user: str) -> HttpResponse:
    ops.close_user_connections(hub, _user(hub, user), _reason(request), _excluded(request))
    return _no_content()


def _user_leave_all_groups(request: HttpRequest, hub: type, user: str) -> HttpResponse:
    ops.remove_user_from_all_groups(hub, _user(hub, user))
    return _no_content()


def _ttl(request: HttpRequest) -> None:
    ttl = request.GET.get("ttl")
    if ttl is not None and not (ttl.isascii() and ttl.isdigit()):
        raise _bad("'ttl' must be a whole number of seconds >= 0.", "ttl")


def _user_in_group(request: HttpRequest, hub: type, user: str, group: str) -> HttpResponse:
    return _exists(ops.user_in_group(hub, _user(hub, user), _group(hub, group)), "user")


def _add_user(request: HttpRequest, hub: type, user: str, group: str) -> HttpResponse:
    _ttl(request)
    ops.add_user_to_group(hub, _user(hub, user), _group(hub, group))
    return _ok()


def _remove_user(request: HttpRequest, hub: type, user: str, group: str) -> HttpResponse:
    ops.remove_user_from_group(hub, _user(hub, user), _group(hub, group))
    return _no_content()


@csrf_exempt
def health(request: HttpRequest) -> HttpResponse:
    """`HEAD /api/health`: 200 while this process serves requests (no token needed)."""
    try:
        _config()
        if request.method not in ("HEAD", "GET"):
            raise RestError(405, "MethodNotAllowed", "Use HEAD.", headers={"Allow": "GET, HEAD"})
    except RestError as error:
        return _error_response(request, error)
    return _ok()


hub_send = endpoint(POST=_send_all)
hub_close = endpoint(POST=_close_all)
connection = endpoint(HEAD=_connection_exists, DELETE=_close_connection)
connection_send = endpoint(POST=_send_connection)
connection_groups = endpoint(DELETE=_leave_all_groups)
group = endpoint(HEAD=_group_exists)
group_send = endpoint(POST=_send_group)
group_close = endpoint(POST=_close_group)
group_connection = endpoint(PUT=_add_connection, DELETE=_remove_connection)
user = endpoint(HEAD=_user_exists)
user_send = endpoint(POST=_send_user)
user_close = endpoint(POST=_close_user)
user_groups = endpoint(DELETE=_user_leave_all_groups)
user_group = endpoint(HEAD=_user_in_group, PUT=_add_user, DELETE=_remove_user)
