"""URL patterns of the REST API: `path("", include("signalr_django.rest.urls"))` serves `/api/...`.

Include them with an empty prefix: tokens are signed for the request URL, and callers
written for Azure SignalR Service build `<endpoint>/api/hubs/<hub>/...`, so the endpoint
they are given is the site's root (or the prefix the patterns are included under). A
trailing slash is accepted; path segments cannot contain "/".
"""

from __future__ import annotations

from django.urls import URLPattern, re_path

from . import views

_HUB = r"^api/hubs/(?P<hub>[^/]+)"
_CONNECTION = r"(?P<connection_id>[^/]+)"
_GROUP = r"(?P<group>[^/]+)"
_USER = r"(?P<user>[^/]+)"

urlpatterns: list[URLPattern] = [
    re_path(r"^api/health/?$", views.health, name="signalr-rest-health"),
    re_path(rf"{_HUB}/:send/?$", views.hub_send),
    re_path(rf"{_HUB}/:closeConnections/?$", views.hub_close),
    re_path(rf"{_HUB}/connections/{_CONNECTION}/:send/?$", views.connection_send),
    re_path(rf"{_HUB}/connections/{_CONNECTION}/groups/?$", views.connection_groups),
    re_path(rf"{_HUB}/connections/{_CONNECTION}/?$", views.connection),
    re_path(rf"{_HUB}/groups/{_GROUP}/:send/?$", views.group_send),
    re_path(rf"{_HUB}/groups/{_GROUP}/:closeConnections/?$", views.group_close),
    re_path(rf"{_HUB}/groups/{_GROUP}/connections/{_CONNECTION}/?$", views.group_connection),
    re_path(rf"{_HUB}/groups/{_GROUP}/?$", views.group),
    re_path(rf"{_HUB}/users/{_USER}/:send/?$", views.user_send),
    re_path(rf"{_HUB}/users/{_USER}/:closeConnections/?$", views.user_close),
    re_path(rf"{_HUB}/users/{_USER}/groups/{_GROUP}/?$", views.user_group),
    re_path(rf"{_HUB}/users/{_USER}/groups/?$", views.user_groups),
    re_path(rf"{_HUB}/users/{_USER}/?$", views.user),
]
