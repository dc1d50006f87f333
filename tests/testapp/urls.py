"""URLs of the test project."""

from django.urls import include, path

from signalr_django import admin_views
from signalr_django.views import negotiate_redirect

from . import client_page, endpoints, presence_views, views
from .hubs import AuthHub, TestHub

urlpatterns = [
    path("broadcast", views.broadcast),
    path("ask-client", views.ask_client),
    path("make-user", views.make_user),
    path("short-login", endpoints.short_login),
    path("client/", client_page.page),
    path("presence", presence_views.presence),
    path("presence/close", presence_views.close),
    path("make-staff", presence_views.make_staff),
    path("signalr/status", admin_views.status),
    path("", include("signalr_django.rest.urls")),
    path("client/<str:name>", client_page.bundle),
    # The WSGI site negotiates and redirects clients to a Daphne worker.
    negotiate_redirect("site/hubs/test", TestHub, worker_route="hubs/test"),
    negotiate_redirect("site/hubs/auth", AuthHub, worker_route="hubs/auth"),
    negotiate_redirect(
        "site/hubs/ep/hooked",
        endpoints.EndpointHub,
        worker_route="hubs/ep/ws",
        NEGOTIATE_RESPONSE_HOOK=endpoints.affinity_cookie,
    ),
]
