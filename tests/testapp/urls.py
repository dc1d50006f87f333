"""URLs of the test project."""

from django.urls import path

from signalr_django.views import negotiate_redirect

from . import client_page, views
from .hubs import AuthHub, TestHub

urlpatterns = [
    path("broadcast", views.broadcast),
    path("make-user", views.make_user),
    path("client/", client_page.page),
    path("client/<str:name>", client_page.bundle),
    # The WSGI site negotiates and redirects clients to a Daphne worker.
    negotiate_redirect("site/hubs/test", TestHub, worker_route="hubs/test"),
    negotiate_redirect("site/hubs/auth", AuthHub, worker_route="hubs/auth"),
]
