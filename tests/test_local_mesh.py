"""`meshgen up` runs real meshes (real Envoy, the demo app, the collector); `meshgen verify`
proves them, and fails for a catalog the running mesh does not implement."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.local.runner import down, status, up
from meshgen.model import load_mesh
from meshgen.verify import run_checks
from meshgen.verify.authority import find_authority
from meshgen.verify.checks import KINDS
from meshgen.verify.http import send
from tests.support import TESTDATA

pytestmark = pytest.mark.envoy
LOCAL = TESTDATA / "catalogs/local.yaml"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("state")
    try:
        report = up(LOCAL, directory)
        assert not report.applied and len(report.started) == 12  # the collector, the renewer, 5 apps, 5 sidecars
        yield directory
    finally:
        stopped = down(directory)
    assert len(stopped) == 12


def edited(tmp_path: Path, *edits: str) -> Path:
    """LOCAL with each (old, new) pair of `edits` replaced."""
    text = LOCAL.read_text()
    for old, new in zip(edits[::2], edits[1::2], strict=True):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_status_shows_every_process_running_and_ready(state_dir: Path) -> None:
    state, processes = status(state_dir)
    assert state is not None and state.mesh == "local"
    assert sorted(p.process.kind for p in processes) == ["app"] * 5 + ["collector"] + ["envoy"] * 5 + ["renewer"]
    assert all(p.running for p in processes)
    assert all(p.ready for p in processes if p.process.kind == "envoy")
    result = CliRunner().invoke(main, ["status", "--state-dir", str(state_dir)])
    assert result.exit_code == 0
    assert "12/12 processes running" in result.output


def test_admin_listens_on_loopback_only(state_dir: Path) -> None:
    mesh = load_mesh(LOCAL)
    for instance in mesh.instances:
        admin = send(instance.host.local_address, instance.admin_port, "/ready")
        assert admin.status == 200 and admin.body.strip() == "LIVE"
        listeners = send(instance.host.local_address, instance.admin_port, "/listeners").body
        assert f"inbound::{instance.host.address}:{instance.inbound_port}" in listeners


def test_verify_passes_every_kind_of_check(state_dir: Path) -> None:
    mesh = load_mesh(LOCAL)
    results, skipped = run_checks(mesh, authority=find_authority(mesh, None, state_dir))
    failed = [r for r in results if not r.passed]
    assert not failed, failed
    assert sorted({r.kind for r in results}) == sorted(KINDS)
    assert {(s.kind, s.name) for s in skipped} == {
        ("routing", "web/default"),
        ("retries", "web/default"),
        ("timeout", "web/default"),
    }


def test_verify_cli_prints_json_checks(state_dir: Path) -> None:
    result = CliRunner().invoke(main, ["verify", str(LOCAL), "--json", "--only", "routing", "--only", "tracing"])
    assert result.exit_code == 0, result.output
    import json

    checks = json.loads(result.stdout)["checks"]  # progress goes to stderr, stdout is the document
    assert {c["kind"] for c in checks} == {"routing", "tracing"}
    assert "verify: routing (1/2)" in result.stderr and "verify: tracing (2/2)" in result.stderr
    assert all(set(c) == {"kind", "name", "passed", "detail"} for c in checks)


# (case, [old, new, ...] edits to LOCAL, kind of check, check that must fail)
WRONG_CATALOGS = [
    ("weights", ["to: {v1: 80, v2: 20}", "to: {v1: 50, v2: 50}"], "routing", "api/split"),
    ("header-rule", ["to: {v2: 100}", "to: {v1: 100}"], "routing", "api/canary"),
    ("retries", ["retries: {attempts: 3, retry_on:", "retries: {attempts: 4, retry_on:"], "retries", "api/split"),
    (
        "timeout",
        [
            "    timeout: 500ms\n    retries: {attempts: 2, per_try_timeout: 200ms}",
            "    timeout: 1500ms\n    retries: {attempts: 1}",
        ],
        "timeout",
        "store/default",
    ),
    ("fault", ["abort: {status: 418, percent: 50}", "abort: {status: 418, percent: 0}"], "fault", "api/slow-drill"),
    ("mirror", ["mirror: {to: v2, percent: 50}", "mirror: {to: v2, percent: 5}"], "mirror", "api/split"),
    (
        "ratelimit",
        ["rate_limit: {requests: 100, per: 1s, burst: 100}", "rate_limit: {requests: 300, per: 1s, burst: 300}"],
        "ratelimit",
        "web inbound (web.v1.web-1)",
    ),
    # The mesh runs one api v1 instance; a catalog with two expects a failing one to be ejected.
    (
        "outlier",
        [
            "v1: {instances: [api-1]}",
            "v1: {instances: [api-1, api-3]}",
            "  api-2: {address: 127.0.60.3}\n",
            "  api-2: {address: 127.0.60.3}\n  api-3: {address: 127.0.60.7}\n",
        ],
        "outlier",
        "api/v1",
    ),
    # A longer chain than the mesh has: store's sidecar does not know audit, so the trace breaks.
    (
        "tracing-chain",
        [
            "  collector-1:",
            "  audit-1: {address: 127.0.60.6}\n  collector-1:",
            "    circuit_breaker: {consecutive_5xx: 3",
            "    dependencies: [audit]\n    circuit_breaker: {consecutive_5xx: 3",
            "    retries: {attempts: 2, per_try_timeout: 200ms}\n",
            "    retries: {attempts: 2, per_try_timeout: 200ms}\n  audit: {port: 8080, versions: {v1: {instances: [audit-1]}}}\n",
        ],
        "tracing",
        "web -> api -> store -> audit",
    ),
]


@pytest.mark.parametrize(("case", "edits", "kind", "name"), WRONG_CATALOGS, ids=[c[0] for c in WRONG_CATALOGS])
def test_verify_fails_for_a_catalog_the_mesh_does_not_implement(
    state_dir: Path, tmp_path: Path, case: str, edits: list[str], kind: str, name: str
) -> None:
    if kind == "ratelimit":
        time.sleep(1.5)  # let the bucket refill after earlier checks
    results, _ = run_checks(load_mesh(edited(tmp_path, *edits)), (kind,))
    verdicts = {r.name: r.passed for r in results}
    assert verdicts.get(name) is False, results


def test_up_again_with_the_same_catalog_changes_nothing(state_dir: Path) -> None:
    report = up(LOCAL, state_dir)
    assert report.applied
    assert (report.files_changed, report.started, report.restarted, report.stopped) == (0, [], [], [])


def _envoy_pids(state_dir: Path) -> dict[str, int]:
    _, processes = status(state_dir)
    return {p.process.name: p.process.pid for p in processes if p.process.kind == "envoy"}


def test_canary_shift_goes_live_without_restart_or_failed_requests(state_dir: Path, tmp_path: Path) -> None:
    mesh = load_mesh(LOCAL)
    caller = mesh.service("web").instances[0]
    address, port = caller.host.local_address, caller.outbound_port
    answers: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def steady_traffic() -> None:
        while not stop.is_set():
            reply = send(address, port, "/", headers={"Host": "api"})
            answers.append((time.monotonic(), reply.status, reply.version))

    pids = _envoy_pids(state_dir)
    worker = threading.Thread(target=steady_traffic)
    worker.start()
    try:
        time.sleep(0.5)
        shift_started = time.monotonic()
        report = up(edited(tmp_path, "to: {v1: 80, v2: 20}", "to: {v2: 100}"), state_dir)  # blue/green
        time.sleep(2.5)
        back_started = time.monotonic()
        up(edited(tmp_path, "to: {v1: 80, v2: 20}", "to: {v1: 90, v2: 10}"), state_dir)
        time.sleep(2.5)
        mark = len(answers)
        time.sleep(3)
    finally:
        stop.set()
        worker.join()
        up(LOCAL, state_dir)

    assert report.applied and report.restarted == [] and report.started == []
    assert report.files_changed == 1  # web's rds-outbound.yaml only
    assert _envoy_pids(state_dir) == pids  # no Envoy was restarted
    failed = [a for a in answers if a[1] != 200]
    assert not failed, failed[:5]
    last_v1 = max(t for t, _, version in answers if version == "v1" and shift_started <= t < back_started)
    assert last_v1 - shift_started < 2.0  # blue/green live within 2 s
    after = answers[mark:]
    share_v2 = sum(1 for a in after if a[2] == "v2") / len(after)
    assert len(after) > 300 and abs(share_v2 - 0.10) < 0.06, (len(after), share_v2)


def test_traces_command_draws_a_waterfall(state_dir: Path) -> None:
    result = CliRunner().invoke(main, ["traces", "--state-dir", str(state_dir), "--limit", "1", "--service", "store"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("trace ")
    assert re.search(r"web server .*\n.*web client api/", result.output)
