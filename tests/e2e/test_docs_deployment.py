"""docs/deployment.md, as written: nginx in front of two Daphne workers, gunicorn and Redis.

The tutorial's project gets the page's settings; gunicorn and the workers start with the
command lines of the page's systemd units, and nginx with the page's server block (only
ports and paths moved to this machine's free ones). The official JavaScript client then
talks to the hub through nginx over every transport, with messages crossing workers.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import redis_url
from tests.servers import free_port, raise_file_limit, wait_for_port

from .conftest import run_node
from .docs_project import block, build_tutorial, project_env, run

pytestmark = pytest.mark.e2e

PAGE = "deployment.md"
VENV_BIN = "/srv/mysite/.venv/bin/"


def exec_start(unit: str, port: int) -> list[str]:
    """The unit's ExecStart as a command line for this machine's Python, for one port."""
    text = block(PAGE, f"/etc/systemd/system/{unit}")
    match = re.search(r"^ExecStart=((?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert match, f"{unit} has no ExecStart"
    args = shlex.split(match.group(1).replace("\\\n", " "))
    assert args[0].startswith(VENV_BIN), args[0]
    args = [sys.executable, "-m", args[0].removeprefix(VENV_BIN), *args[1:]]
    return [arg.replace("%i", str(port)) for arg in args]


@contextlib.contextmanager
def process(args: list[str], cwd: Path, log: Path, port: int, **env: str) -> Iterator[None]:
    """Run a server of the deployment until the test ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=project_env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_file_limit,
        )
    try:
        wait_for_port(port, timeout=60, proc=proc)
        yield
    except BaseException:
        print(log.read_text(errors="replace")[-4000:])
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def nginx_config(folder: Path, ports: dict[str, int], static: Path) -> Path:
    """The page's server block on free ports, inside a minimal nginx.conf of our own."""
    site = block(PAGE, "/etc/nginx/sites-available/mysite")
    for name, documented in (("worker1", 8001), ("worker2", 8002), ("site", 8000)):
        assert f"127.0.0.1:{documented};" in site, name
        site = site.replace(f"127.0.0.1:{documented};", f"127.0.0.1:{ports[name]};")
    assert "listen 80;" in site and "/srv/mysite/static/" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{ports['nginx']};")
    site = site.replace("/srv/mysite/static/", f"{static}/")
    conf = folder / "nginx.conf"
    # Run as root, nginx's workers would drop to `nobody`, who cannot read pytest's
    # private temporary folders; a deployment's static folder is readable by them.
    user = "user root;" if os.geteuid() == 0 else ""
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf.write_text(
        f"""
{user}
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$request_method $uri $status $upstream_addr';
    access_log {folder}/access.log upstream;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
{site}
}}
"""
    )
    return conf


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The whole deployment of the page; yields nginx's URL and its access log."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
    )
    if nginx is None:
        pytest.fail("nginx is not installed; run the README's test command to set up")
    root = build_tutorial(tmp_path_factory.mktemp("deployment"))
    static = root / "collected-static"
    settings = root / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + "\n"
        + block(PAGE, "mysite/settings.py (at the end)")
        # This machine's names and folders instead of the page's example ones.
        + f'\nALLOWED_HOSTS += ["127.0.0.1"]\nSTATIC_ROOT = "{static}"\n'
    )
    ports = {name: free_port() for name in ("site", "worker1", "worker2", "nginx")}
    logs = tmp_path_factory.mktemp("deployment-logs")
    with redis_url() as url, contextlib.ExitStack() as stack:
        env = {"REDIS_URL": url}
        run([sys.executable, "manage.py", "check", "--fail-level", "WARNING"], root, **env)
        run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], root, **env)
        site = exec_start("mysite-gunicorn.service", ports["site"])
        site = [a.replace("127.0.0.1:8000", f"127.0.0.1:{ports['site']}") for a in site]
        stack.enter_context(process(site, root, logs / "gunicorn.log", ports["site"], **env))
        for name in ("worker1", "worker2"):
            port = ports[name]
            command = exec_start("signalr-daphne@.service", port)
            stack.enter_context(process(command, root, logs / f"{name}.log", port, **env))
        conf = nginx_config(logs, ports, static)
        command = [nginx, "-c", str(conf), "-p", str(logs)]
        stack.enter_context(process(command, root, logs / "nginx.out", ports["nginx"]))
        yield f"http://127.0.0.1:{ports['nginx']}", logs / "access.log"


def test_nginx_serves_the_site_and_its_static_files(deployment: tuple[str, Path]) -> None:
    """gunicorn answers `/` behind nginx, and nginx serves the collected static files."""
    url, _ = deployment
    with urllib.request.urlopen(url + "/", timeout=30) as response:
        assert "/static/chat/signalr.min.js" in response.read().decode()
    with urllib.request.urlopen(url + "/static/chat/signalr.min.js", timeout=30) as response:
        assert response.status == 200


def test_the_hub_works_through_nginx_across_workers(deployment: tuple[str, Path]) -> None:
    """Every transport works through the page's nginx block, and both workers serve hub
    requests (round robin, no affinity), so messages cross workers through Redis."""
    url, access_log = deployment
    result = run_node("tutorial_chat.mjs", url + "/hubs/chat", timeout=180)
    for transport in ("WebSockets", "ServerSentEvents", "LongPolling"):
        assert result[transport]["received"] == "ada: hello", transport
        assert result[transport]["error"].endswith("HubException: Say something."), transport
    upstreams = {
        line.split()[-1] for line in access_log.read_text().splitlines() if " /hubs/chat" in line
    }
    assert len(upstreams) >= 2, upstreams
