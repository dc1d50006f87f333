"""A staff-only status page: workers, hubs, connection counts and groups, refreshed live.

Map it in the URLconf the WSGI site (or the ASGI one) serves:

    from signalr_django import admin_views
    path("signalr/status/", admin_views.status, name="signalr-status"),

The page polls itself with `?format=json` every few seconds (a small inline script, no
external JavaScript) and redraws the numbers. Anonymous visitors are redirected to
`LOGIN_URL`; signed-in users who are not staff get 403. The numbers are gathered from the
workers over the backplane as `manage.py signalr status` does (see docs/management.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import resolve_url
from django.utils.html import json_script
from django.views.decorators.cache import never_cache

# Groups listed per hub on the page (the largest ones); the counts cover every group.
TOP_GROUPS = 20
REFRESH_SECONDS = 2

View = Callable[..., HttpResponse]


def staff_only(view: View) -> View:
    """Let active staff users in; redirect anonymous users to log in; 403 for the others.

    Django admin's `staff_member_required` would send everyone to the admin's login page,
    which a site without the admin does not have.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), resolve_url(settings.LOGIN_URL))
        if not (user.is_active and user.is_staff):
            return HttpResponse("Staff only.", status=403, content_type="text/plain")
        return view(request, *args, **kwargs)

    return wrapper


def snapshot(timeout: float | None = None) -> dict[str, Any]:
    """Workers, totals per hub and each hub's largest groups (JSON-ready)."""
    from .context import run_sync
    from .presence.api import Presence, cluster_status

    status = run_sync(cluster_status(timeout))
    hubs: dict[str, dict[str, Any]] = {}
    for worker in status.value:
        for name, counts in worker.get("hubs", {}).items():
            hub = hubs.setdefault(name, {"connections": 0, "users": 0})
            hub["connections"] += counts.get("connections", 0)
            hub["users"] += counts.get("users", 0)
    missing = set(status.workers_missing)
    for name, hub in hubs.items():
        groups = run_sync(Presence(name, timeout).groups())
        missing.update(groups.workers_missing)
        largest = sorted(groups.value.items(), key=lambda item: (-item[1], item[0]))
        hub["group_count"] = len(groups.value)
        hub["groups"] = dict(largest[:TOP_GROUPS])
    return {
        "workers": status.value,
        "workers_missing": sorted(missing),
        "complete": not missing,
        "hubs": dict(sorted(hubs.items())),
        "connections": sum(w.get("connections", 0) for w in status.value),
    }


@never_cache
@staff_only
def status(request: HttpRequest) -> HttpResponse:
    """The status page, or its numbers as JSON with `?format=json`."""
    data = snapshot()
    if request.GET.get("format") == "json":
        return JsonResponse(data)
    page = PAGE.replace("__DATA__", json_script(data, "initial"))
    return HttpResponse(page.replace("__REFRESH__", str(REFRESH_SECONDS * 1000)))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SignalR status</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.missing{color:#b00;font-weight:bold}.muted{color:#777}
</style></head>
<body>
<h1>SignalR status</h1>
<p><span id="total" class="n"></span> connections &middot; <span id="state"></span>
&middot; <span class="muted">updated <span id="updated"></span></span></p>
<h2>Workers</h2>
<table><thead><tr><th>Worker</th><th>PID</th><th>Connections</th><th>Limit</th>
<th>State</th></tr></thead><tbody id="workers"></tbody></table>
<h2>Hubs</h2>
<table><thead><tr><th>Hub</th><th>Connections</th><th>Users</th><th>Groups</th>
<th>Largest groups</th></tr></thead><tbody id="hubs"></tbody></table>
__DATA__
<script>
(function () {
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "-" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
  }
  function render(data) {
    document.getElementById("total").textContent = data.connections;
    var state = document.getElementById("state");
    state.textContent = data.complete ? "all workers answered"
      : "no answer from " + data.workers_missing.join(", ");
    state.className = data.complete ? "" : "missing";
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    var workers = document.getElementById("workers");
    workers.textContent = "";
    data.workers.forEach(function (w) {
      var row = workers.insertRow();
      cell(row, w.name); cell(row, w.pid, "n"); cell(row, w.connections, "n");
      cell(row, w.limit, "n"); cell(row, w.draining ? "draining" : "serving");
    });
    data.workers_missing.forEach(function (name) {
      var row = workers.insertRow();
      cell(row, name); cell(row, null); cell(row, null); cell(row, null);
      cell(row, "not answering", "missing");
    });
    var hubs = document.getElementById("hubs");
    hubs.textContent = "";
    Object.keys(data.hubs).forEach(function (name) {
      var h = data.hubs[name], row = hubs.insertRow();
      cell(row, name); cell(row, h.connections, "n"); cell(row, h.users, "n");
      cell(row, h.group_count, "n");
      cell(row, Object.keys(h.groups).map(function (g) {
        return g + " (" + h.groups[g] + ")";
      }).join(", "));
    });
  }
  render(JSON.parse(document.getElementById("initial").textContent));
  function poll() {
    fetch("?format=json", {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(render)
      .catch(function (e) {
        var s = document.getElementById("state");
        s.textContent = "refresh failed (" + e.message + ")"; s.className = "missing";
      })
      .finally(function () { setTimeout(poll, __REFRESH__); });
  }
  setTimeout(poll, __REFRESH__);
})();
</script>
</body></html>
"""
