"""A real third-party app, unchanged, in a mesh: nginx from Debian (C, no proxy support, no mesh
library) as the edge service and as its backend. The edge's nginx dials the plain address meshgen
gives its dependency (DETAILS_SERVICE_HOST:PORT, no Host header games); a backend instance that
really fails (nginx answering 503) is hidden by retries; verify reports honestly on apps that
have none of the demo app's knobs. Hosts on 127.0.68.x."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.local.runner import down, up
from meshgen.deploy.local.state import load_state
from meshgen.model import Mesh, load_mesh
from meshgen.verify import run_checks
from meshgen.verify.authority import find_authority
from meshgen.verify.http import send
from tests.support import need_tool

pytestmark = pytest.mark.envoy

# nginx reads no environment: the command writes its config from the variables meshgen sets,
# as a container entrypoint would.
NGINX = """\
daemon off;
master_process off;
pid nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    access_log access.log;
    client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;
    server {
        listen @LISTEN@;
        location / { @ACTION@ }
    }
}
"""
START = (
    'dir="$PWD/run/$MESHGEN_INSTANCE" && mkdir -p "$dir/tmp" && '
    'sed -e "s|@LISTEN@|$MESHGEN_LISTEN|" -e "s|@ACTION@|$ACTION|" -e "s|@VERSION@|$MESHGEN_VERSION|" '
    '-e "s|@INSTANCE@|$MESHGEN_INSTANCE|" -e "s|@UPSTREAM@|${DETAILS_SERVICE_HOST:-}:${DETAILS_SERVICE_PORT:-}|" '
    'nginx.conf.in > "$dir/nginx.conf" && exec nginx -e stderr -p "$dir/" -c nginx.conf'
)
PROXY = "proxy_pass http://@UPSTREAM@;"
ANSWER = 'return 200 "details @VERSION@ @INSTANCE@";'
FAIL = 'return 503 "broken";'


def instance(host: str, action: str) -> dict[str, object]:
    return {"host": host, "command": ["sh", "-c", START], "env": {"ACTION": action}, "workdir": "apps"}


CATALOG = {
    "mesh": {"name": "realapps", "tracing": {"provider": "zipkin", "collector": "collector-1:9411"}},
    "hosts": {
        "web-1": {"address": "127.0.68.1"},
        "d-1": {"address": "127.0.68.2"},
        "d-2": {"address": "127.0.68.3"},
        "d-3": {"address": "127.0.68.4"},
        "collector-1": {"address": "127.0.68.9"},
    },
    "services": {
        "web": {
            "port": 8080,
            "edge": True,
            "versions": {"v1": {"instances": [instance("web-1", PROXY)]}},
            # nginx dials an address: the dependency gets one of its own, on its port (9080)
            "dependencies": [{"service": "details", "address": "127.0.68.200"}],
            "authorization": [{"outside": True}],
        },
        "details": {
            "port": 9080,
            "retries": {"attempts": 3, "retry_on": ["5xx"], "another_host": True},
            "versions": {
                "v1": {"instances": [instance("d-1", ANSWER), instance("d-2", FAIL)]},
                "v2": {"instances": [instance("d-3", ANSWER)]},
            },
            "routes": [
                {"name": "canary", "match": {"headers": {"x-canary": {"exact": "yes"}}}, "to": {"v2": 100}},
                {"name": "default", "to": {"v1": 100}},
            ],
        },
    },
}


@pytest.fixture(scope="module")
def mesh_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    need_tool("nginx")  # scripts/debian-tools installs Debian's nginx-light
    directory = tmp_path_factory.mktemp("realapps")
    (directory / "apps").mkdir()
    (directory / "apps" / "nginx.conf.in").write_text(NGINX)
    (directory / "catalog.yaml").write_text(yaml.safe_dump(CATALOG, sort_keys=False))
    try:
        up(directory / "catalog.yaml", directory / "state")
        yield directory
    finally:
        down(directory / "state")


def mesh_of(mesh_dir: Path) -> Mesh:
    return load_mesh(mesh_dir / "catalog.yaml")


def call_edge(mesh_dir: Path, headers: dict[str, str] | None = None) -> tuple[int, str]:
    edge = mesh_of(mesh_dir).service("web").instances[0]
    reply = send(edge.host.address, edge.inbound_port, "/", headers=headers or {}, timeout=10)
    return reply.status, str(reply.body)


def app_pid(mesh_dir: Path, name: str) -> int:
    state = load_state(mesh_dir / "state")
    assert state is not None
    return state.by_name()[name].pid


def test_the_app_learns_its_dependency_address_from_the_environment(mesh_dir: Path) -> None:
    environ = Path(f"/proc/{app_pid(mesh_dir, 'web.v1.web-1 app')}/environ").read_bytes().split(b"\0")
    variables = dict(entry.decode().split("=", 1) for entry in environ if b"=" in entry)
    assert variables["DETAILS_SERVICE_HOST"] == "127.0.68.200"
    assert variables["DETAILS_SERVICE_PORT"] == "9080"
    assert variables["DETAILS_URL"] == "http://127.0.68.200:9080"
    assert "HTTP_PROXY" not in variables  # every dependency has an address of its own


def test_nginx_reaches_its_dependency_through_the_plain_address(mesh_dir: Path) -> None:
    """nginx sends Host: 127.0.68.200:9080; the dependency's own listener routes it anyway."""
    answers = Counter(call_edge(mesh_dir) for _ in range(20))
    assert set(answers) <= {(200, "details v1 details.v1.d-1")}, answers
    canary = Counter(call_edge(mesh_dir, {"x-canary": "yes"}) for _ in range(5))
    assert canary == Counter({(200, "details v2 details.v2.d-3"): 5})  # nginx passes the header on


def test_retries_hide_an_instance_that_really_fails(mesh_dir: Path) -> None:
    log = mesh_dir / "apps" / "run" / "details.v1.d-2" / "access.log"
    before = log.read_text().count('" 503 ')
    statuses = Counter(call_edge(mesh_dir)[0] for _ in range(20))
    failed_there = log.read_text().count('" 503 ') - before
    assert statuses == Counter({200: 20})
    # Ejected by outlier detection after its first failures, d-2 may see only some requests.
    assert failed_there >= 1 or before >= 1, "d-2's nginx never answered 503: nothing was retried"


def test_verify_reports_honestly_on_real_apps(mesh_dir: Path) -> None:
    mesh = mesh_of(mesh_dir)
    results, skipped = run_checks(mesh, authority=find_authority(mesh, None, mesh_dir / "state"))
    failed = [r for r in results if not r.passed]
    assert not failed, failed
    verdicts = {(r.kind, r.name) for r in results}
    assert {("routing", "details/canary"), ("routing", "details/default")} <= verdicts
    assert ("tracing", "web -> details") in verdicts
    reasons = {(s.kind, s.name): s.reason for s in skipped}
    for kind in ("retries", "timeout"):
        assert "runs its own app" in reasons[(kind, "details/default")], reasons
    assert "runs its own app" in reasons[("outlier", "details/v1")], reasons


def test_status_shows_an_app_that_exited_with_its_last_words(mesh_dir: Path) -> None:
    os.kill(app_pid(mesh_dir, "details.v2.d-3 app"), signal.SIGKILL)
    result = CliRunner().invoke(main, ["status", "--state-dir", str(mesh_dir / "state")])
    assert result.exit_code == 1
    assert re.search(r"details\.v2\.d-3 app is not running; the end of .*details\.v2\.d-3\.app\.log:", result.output)
    assert "meshgen: details.v2.d-3 app starting at" in result.output  # the log's last lines
    up(mesh_dir / "catalog.yaml", mesh_dir / "state")  # starts it again; its log goes on
    log = next((mesh_dir / "state" / "logs").glob("details.v2.d-3.app.log")).read_text()
    assert log.count("meshgen: details.v2.d-3 app starting at") == 2
    assert call_edge(mesh_dir, {"x-canary": "yes"}) == (200, "details v2 details.v2.d-3")
