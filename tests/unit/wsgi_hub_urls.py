"""A URLconf with a hub in it (the mistake signalr.W003 reports)."""

from signalr_django import map_hub
from tests.testapp.hubs import TestHub

urlpatterns = [map_hub("hubs/test", TestHub)]
