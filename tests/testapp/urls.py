"""URLs of the test project."""

from django.urls import path

from . import views

urlpatterns = [
    path("broadcast", views.broadcast),
    path("make-user", views.make_user),
]
