"""CLI conventions every command keeps: --json prints one JSON document on stdout (the shapes in
the README's "Machine-readable output"), progress goes to stderr, Ctrl-C exits 130 and an
interrupted `up` stops what it started, NO_COLOR is respected, shell completion works.

Local meshes here use 127.0.68.x, a block no other test uses.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from meshgen.cli import main
from meshgen.deploy.local import lifecycle
from meshgen.deploy.local.processes import alive, port_free
from meshgen.deploy.local.state import Process, load_state
from tests.support import REPO

MINIMAL = REPO / "examples/minimal/catalog.yaml"

MESH = """
mesh: {name: conventions, security: {mtls: off}%s}
hosts:
  a-1: {address: 127.0.68.1}
  b-1: {address: 127.0.68.2}
  trace-1: {address: 127.0.68.9}
services:
  a: {port: 8080, edge: true, versions: {v1: {instances: [a-1]}}, dependencies: [b]}
  b: {port: 8080, versions: {v1: {instances: [b-1]}}}
"""


def write(tmp_path: Path, text: str = MESH % "") -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def invoke(*args: object, env: dict[str, str] | None = None, color: bool = False) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env, color=color)


def parsed(result: Result) -> Any:
    """stdout as the one JSON document --json promises (json.loads refuses anything around it)."""
    return json.loads(result.stdout)


# --------------------------------------------------------------------------------------------
# --json, without a running mesh
# --------------------------------------------------------------------------------------------


def test_validate_json() -> None:
    result = invoke("validate", MINIMAL, "--json")
    assert result.exit_code == 0, result.output
    assert parsed(result) == {
        "catalog": str(MINIMAL),
        "valid": True,
        "mesh": "minimal",
        "services": 2,
        "sidecars": 2,
        "gateways": 0,
        "envoy_validated": None,
    }


def test_an_error_under_json_is_a_json_document_too(tmp_path: Path) -> None:
    path = write(tmp_path, MESH.replace("port: 8080, edge", "port: abc, edge") % "")
    result = invoke("validate", path, "--json")
    assert result.exit_code == 2
    error = parsed(result)["error"]
    assert error["exit_code"] == 2 and error["message"].startswith("invalid catalog: 1 problem")
    [problem] = error["problems"]
    assert problem["file"] == str(path) and problem["line"] == 8
    assert problem["path"] == "services.a.port"
    assert "meshgen: invalid catalog" in result.stderr  # the person at the terminal still reads it


def test_diff_json_lists_each_file_with_its_change(tmp_path: Path) -> None:
    out = tmp_path / "out"
    fresh = parsed(invoke("diff", MINIMAL, "-o", out, "--json"))
    assert fresh["summary"] == {"add": len(fresh["changes"]), "change": 0, "remove": 0}
    assert {c["change"] for c in fresh["changes"]} == {"add"} and all(c["diff"] is None for c in fresh["changes"])
    assert invoke("generate", MINIMAL, "-o", out).exit_code == 0
    assert parsed(invoke("diff", MINIMAL, "-o", out, "--json")) == {
        "changes": [],
        "summary": {"add": 0, "change": 0, "remove": 0},
    }
    routes = out / "client.v1.client-1" / "rds-outbound.yaml"
    routes.write_text(routes.read_text().replace('"timeout": "5s"', '"timeout": "9s"'))
    result = invoke("diff", MINIMAL, "-o", out, "--json", "--exit-code")
    assert result.exit_code == 1
    [change] = parsed(result)["changes"]
    assert change["path"] == "client.v1.client-1/rds-outbound.yaml" and change["change"] == "change"
    assert re.search(r'^-\s+"timeout": "9s"', change["diff"], re.M) and re.search(
        r'^\+\s+"timeout": "5s"', change["diff"], re.M
    )


def test_status_json_without_a_mesh(tmp_path: Path) -> None:
    result = invoke("status", "--state-dir", tmp_path / "none", "--json")
    assert result.exit_code == 1
    assert parsed(result) == {"mesh": None, "catalog": None, "healthy": False, "processes": []}


@pytest.fixture
def collector() -> Iterator[list[list[dict[str, Any]]]]:
    """A stand-in Zipkin collector on 127.0.68.9:9411 answering with the traces the test puts in."""
    traces: list[list[dict[str, Any]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(traces).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.68.9", 9411), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield traces
    server.shutdown()
    server.server_close()


def test_traces_json_is_the_collector_s_spans(tmp_path: Path, collector: list[list[dict[str, Any]]]) -> None:
    path = write(tmp_path, MESH % ", tracing: {collector: trace-1:9411}")
    span = {"traceId": "ab", "id": "01", "name": "get /", "timestamp": 1, "duration": 5}
    collector.append([{**span, "localEndpoint": {"serviceName": "a"}}])
    result = invoke("traces", "--catalog", path, "--json")
    assert result.exit_code == 0, result.output
    assert parsed(result) == {"traces": collector}
    assert "trace ab" in invoke("traces", "--catalog", path).stdout  # the waterfall without --json


# --------------------------------------------------------------------------------------------
# A running mesh: up, status, down; Ctrl-C
# --------------------------------------------------------------------------------------------


@pytest.mark.envoy
def test_up_json_with_progress_on_stderr_then_status_json(tmp_path: Path) -> None:
    path, state_dir = write(tmp_path), tmp_path / "state"
    try:
        result = invoke("up", path, "--state-dir", state_dir, "--json")
        assert result.exit_code == 0, result.output
        report = parsed(result)
        assert report["mesh"] == "conventions" and not report["applied"]
        assert sorted(report["started"]) == ["a.v1.a-1 app", "a.v1.a-1 envoy", "b.v1.b-1 app", "b.v1.b-1 envoy"]
        assert report["instances"][0] == {
            "service": "a",
            "version": "v1",
            "instance": "a.v1.a-1",
            "mesh_address": "127.0.68.1:15006",
            "app": "127.0.68.129:8080",
            "admin": "http://127.0.68.129:15000",
        }
        assert report["edges"] == ["http://127.0.68.1:15006/"] and report["traces"] is None
        assert "starting 4 processes" in result.stderr and "ready (4/4)" in result.stderr

        status = invoke("status", "--state-dir", state_dir, "--json")
        assert status.exit_code == 0, status.output
        document = parsed(status)
        assert document["healthy"] and document["mesh"] == "conventions"
        envoy = next(p for p in document["processes"] if p["name"] == "a.v1.a-1 envoy")
        assert envoy["running"] and envoy["ready"] is True and envoy["problems"] == []
    finally:
        assert invoke("down", "--state-dir", state_dir).exit_code == 0


@pytest.mark.envoy
def test_ctrl_c_during_up_exits_130_and_stops_what_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, state_dir = write(tmp_path), tmp_path / "state"
    started: list[Process] = []
    real_spawn, real_wait = lifecycle.spawn, lifecycle._wait_ready

    def spawn(*args: Any, **kwargs: Any) -> Process:
        started.append(real_spawn(*args, **kwargs))
        return started[-1]

    def wait_then_interrupt(spec: Any, process: Process) -> None:
        real_wait(spec, process)
        if len(started) >= 2:
            raise KeyboardInterrupt  # as Ctrl-C would, with two processes up

    monkeypatch.setattr(lifecycle, "spawn", spawn)
    monkeypatch.setattr(lifecycle, "_wait_ready", wait_then_interrupt)
    result = invoke("up", path, "--state-dir", state_dir)
    assert result.exit_code == 130, result.output
    assert "stopping what was started" in result.stderr and result.stderr.endswith("meshgen: interrupted\n")
    assert len(started) >= 2 and not any(alive(p) for p in started)
    assert load_state(state_dir) is None
    assert port_free("127.0.68.129", 8080) and port_free("127.0.68.130", 8080)


# --------------------------------------------------------------------------------------------
# Colour and completion
# --------------------------------------------------------------------------------------------


def test_no_color_turns_off_click_styling() -> None:
    """meshgen styles nothing itself; this holds for anything click would style on a terminal."""

    @click.command("styled-probe")
    def probe() -> None:
        click.secho("styled", fg="red")

    main.add_command(probe)
    try:
        assert "\x1b[" in invoke("styled-probe", color=True).stdout  # a terminal gets colour...
        assert invoke("styled-probe", color=True, env={"NO_COLOR": "1"}).stdout == "styled\n"  # ...unless NO_COLOR
        assert invoke("styled-probe").stdout == "styled\n"  # not a terminal: never
    finally:
        main.commands.pop("styled-probe")


def test_shell_completion() -> None:
    runner = CliRunner()
    script = runner.invoke(main, [], prog_name="meshgen", env={"_MESHGEN_COMPLETE": "bash_source"})
    assert script.exit_code == 0 and "complete -o nosort -F _meshgen_completion meshgen" in script.stdout
    env = {"_MESHGEN_COMPLETE": "bash_complete", "COMP_WORDS": "meshgen st", "COMP_CWORD": "1"}
    words = runner.invoke(main, [], prog_name="meshgen", env=env)
    assert words.stdout.splitlines() == ["plain,status"]
