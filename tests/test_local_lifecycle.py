"""Starting and stopping local meshes: clean errors, clean stops, nothing left behind."""

from __future__ import annotations

import http.server
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.local.processes import alive, port_free
from meshgen.deploy.local.runner import down, up
from meshgen.deploy.local.state import load_state
from meshgen.errors import EnvoyNotFoundError, UserError
from meshgen.model import load_mesh
from meshgen.verify.http import send

pytestmark = pytest.mark.envoy

SMALL = """
mesh:
  name: small
  tracing: {collector: trace-1:9411}
hosts:
  a-1: {address: 127.0.61.1}
  b-1: {address: 127.0.61.2}
  trace-1: {address: 127.0.61.9}
services:
  a: {port: 8080, edge: true, versions: {v1: {instances: [a-1]}}, dependencies: [b]}
  b:
    port: 8080
    versions:
      v1:
        instances: [{host: b-1%s}]
external:
  partner: {address: api.partner.example, port: 443, tls: true}
"""


def catalog(tmp_path: Path, instance_extra: str = "") -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(SMALL % instance_extra)
    return path


def sockets_of(path: Path) -> list[tuple[str, int]]:
    mesh = load_mesh(path)
    found = [(s.address, s.port) for service in mesh.services for i in service.instances for s in service.sockets(i)]
    assert mesh.tracing is not None
    return [*found, (mesh.tracing.collector_address, mesh.tracing.collector_port)]


def test_up_then_down_leaves_nothing_running(tmp_path: Path) -> None:
    path, state_dir = catalog(tmp_path), tmp_path / "state"
    result = CliRunner().invoke(main, ["up", str(path), "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert "mesh small is up: 6 processes" in result.output
    assert "a.v1.a-1  127.0.61.1:15006  127.0.61.129:8080  http://127.0.61.129:15000" in result.output
    assert "call the edge:  curl http://127.0.61.1:15006/" in result.output
    assert "external partner (api.partner.example) is off this machine" in result.output
    state = load_state(state_dir)
    assert state is not None
    assert all(p.started for p in state.processes)  # each recorded with its identity
    assert all(alive(p) for p in state.processes)
    assert (state_dir / "logs" / "b.v1.b-1.envoy.log").exists()

    result = CliRunner().invoke(main, ["down", "--state-dir", str(state_dir)])
    assert result.exit_code == 0 and "stopped 6 processes" in result.output
    assert not any(alive(p) for p in state.processes)
    assert all(port_free(address, port) for address, port in sockets_of(path))
    assert load_state(state_dir) is None
    again = CliRunner().invoke(main, ["status", "--state-dir", str(state_dir)])
    assert again.exit_code == 1 and "no mesh is running" in again.output


def test_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    path, state_dir = catalog(tmp_path), tmp_path / "state"
    with socket.socket() as squatter:
        squatter.bind(("127.0.61.130", 8080))
        squatter.listen()
        with pytest.raises(UserError, match=r"already in use:\n  127\.0\.61\.130:8080 \(b\.v1\.b-1 app\)"):
            up(path, state_dir)
    assert load_state(state_dir) is None
    assert all(port_free(address, port) for address, port in sockets_of(path))


def test_app_that_dies_at_start_stops_the_whole_mesh(tmp_path: Path) -> None:
    path = catalog(tmp_path, ", command: [python3, -c, \"import sys; print('cannot start'); sys.exit(3)\"]")
    state_dir = tmp_path / "state"
    with pytest.raises(UserError, match=r"(?s)b\.v1\.b-1 app exited during start.*cannot start"):
        up(path, state_dir)
    assert load_state(state_dir) is None
    assert all(port_free(address, port) for address, port in sockets_of(path))


def test_missing_envoy_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHGEN_ENVOY", str(tmp_path / "no-such-envoy"))
    with pytest.raises(EnvoyNotFoundError, match=r"MESHGEN_ENVOY=.*no-such-envoy is not an executable file"):
        up(catalog(tmp_path), tmp_path / "state")
    result = CliRunner().invoke(main, ["up", str(catalog(tmp_path)), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 1 and "envoy not found" in result.stderr
    assert load_state(tmp_path / "state") is None


def test_hosts_off_this_machine_cannot_run_locally(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(SMALL.replace("127.0.61.2", "10.20.30.40") % "")
    with pytest.raises(UserError, match=r"host b-1 has address 10\.20\.30\.40, which is not on loopback"):
        up(path, tmp_path / "state")


def test_external_stand_in_must_be_loopback(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--external partner: 192\.0\.2\.1 is not a loopback address"):
        up(catalog(tmp_path), tmp_path / "state", {"partner": ("192.0.2.1", 443)})
    with pytest.raises(UserError, match="--external names no external service of the catalog: nope"):
        up(catalog(tmp_path), tmp_path / "state", {"nope": ("127.0.0.1", 443)})


def test_down_without_a_mesh_says_so(tmp_path: Path) -> None:
    assert down(tmp_path / "empty") == []


STAND_IN = """
mesh: {name: standin, security: {mtls: off}}
hosts:
  c-1: {address: 127.0.61.20}
services:
  c: {port: 8080, edge: true, versions: {v1: {instances: [c-1]}}, dependencies: [partner]}
external:
  partner: {address: api.partner.example, port: 80}
"""


def test_an_external_stand_in_gets_the_external_s_real_name_as_host(tmp_path: Path) -> None:
    """--external points calls at a local stand-in; what it receives must look like the real call."""
    seen: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.61.30", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path, state_dir = tmp_path / "catalog.yaml", tmp_path / "state"
    path.write_text(STAND_IN)
    try:
        up(path, state_dir, {"partner": ("127.0.61.30", server.server_port)})
        reply = send("127.0.61.148", 15001, "/", headers={"Host": "partner"})  # c-1's local address
        assert reply.status == 200, reply
        assert seen == ["api.partner.example"]
    finally:
        down(state_dir)
        server.shutdown()


DEEP_HEADER_ROUTE = """
mesh: {name: deep, security: {mtls: off}}
hosts:
  a-1: {address: 127.0.61.41}
  b-1: {address: 127.0.61.42}
  c-1: {address: 127.0.61.43}
  c-2: {address: 127.0.61.44}
services:
  a: {port: 8080, edge: true, versions: {v1: {instances: [a-1]}}, dependencies: [b]}
  b: {port: 8080, versions: {v1: {instances: [b-1]}}, dependencies: [c]}
  c:
    port: 8080
    versions: {v1: {instances: [c-1]}, v2: {instances: [c-2]}}
    routes:
      - {name: jason, match: {headers: {end-user: jason}}, to: {v2: 100}}
      - {name: everyone, to: {v1: 100}}
"""


def test_a_header_set_at_the_edge_routes_two_hops_down(tmp_path: Path) -> None:
    """The demo app passes on the headers routes match on, so header routing works past one hop."""
    path, state_dir = tmp_path / "catalog.yaml", tmp_path / "state"
    path.write_text(DEEP_HEADER_ROUTE)
    try:
        up(path, state_dir)

        def c_version(user: str) -> str:
            reply = send("127.0.61.169", 15001, "/", headers={"Host": "b", "x-demo-call": "c", "end-user": user})
            assert reply.status == 200, reply
            return str(reply.body["calls"][0]["body"]["version"])

        assert c_version("jason") == "v2"
        assert c_version("someone") == "v1"
    finally:
        down(state_dir)


HEALTH_CHECKED = """
mesh: {name: health}
hosts:
  a-1: {address: 127.0.61.51}
  b-1: {address: 127.0.61.52}
  b-2: {address: 127.0.61.53}
services:
  a: {port: 8080, edge: true, versions: {v1: {instances: [a-1]}}, dependencies: [b], authorization: [{outside: true}]}
  b:
    port: 8080
    versions: {v1: {instances: [b-1, b-2]}}
    health_check: {path: /healthz, interval: 5s, healthy_threshold: 2}
"""


def test_a_fresh_mesh_is_healthy_at_once(tmp_path: Path) -> None:
    """Callees' sidecars start before their callers', so a caller's first health check finds them
    listening; had it failed, two more passes 5 s apart would be needed."""
    path, state_dir = tmp_path / "catalog.yaml", tmp_path / "state"
    path.write_text(HEALTH_CHECKED)
    try:
        up(path, state_dir)
        deadline = time.monotonic() + 2
        while True:
            clusters = send("127.0.61.179", 15000, "/clusters").body  # a-1's admin, on its local address
            flags = re.findall(r"^b\.v1::[0-9.:]+::health_flags::(\S+)$", str(clusters), re.MULTILINE)
            if flags == ["healthy", "healthy"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert flags == ["healthy", "healthy"], clusters
    finally:
        down(state_dir)


def test_up_refuses_a_mesh_the_inotify_limit_cannot_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Envoy watches its files with inotify instances of its own; past the user's limit the
    next Envoy would die at start. up says so first, and starts nothing."""
    from meshgen.deploy.local import limits

    limit = tmp_path / "max_user_instances"
    limit.write_text(f"{limits.inotify_in_use(__import__('os').getuid()) + 5}\n")  # room for less than one sidecar pair
    monkeypatch.setattr(limits, "MAX_INSTANCES", limit)
    path, state_dir = catalog(tmp_path), tmp_path / "state"
    with pytest.raises(UserError, match=r"the sidecars need 15 inotify instances .* fs\.inotify\.max_user_instances"):
        up(path, state_dir)
    assert load_state(state_dir) is None or not load_state(state_dir).processes  # type: ignore[union-attr]
