"""verify on catalogs that earlier made it misjudge a correct mesh: a circuit breaker of one
connection, a fault delay before a route timeout, a route that aborts everything, a chain that
legitimately answers an error. Each must pass (or be skipped with its reason), never fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshgen.deploy.local.runner import down, up
from meshgen.model import load_mesh
from meshgen.verify import run_checks
from meshgen.verify.authority import find_authority
from meshgen.verify.checks.base import set_fault
from tests.support import TESTDATA

pytestmark = pytest.mark.envoy
CATALOG = TESTDATA / "catalogs/acceptance.yaml"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("acceptance")
    try:
        up(CATALOG, directory)
        yield directory
    finally:
        down(directory)


def verdicts(kinds: tuple[str, ...], state_dir: Path) -> tuple[dict[str, object], dict[str, str]]:
    mesh = load_mesh(CATALOG)
    results, skipped = run_checks(mesh, kinds, authority=find_authority(mesh, None, state_dir))
    return {r.name: r for r in results}, {s.name: s.reason for s in skipped}


def test_routing_stays_within_a_one_connection_circuit_breaker(state_dir: Path) -> None:
    results, _ = verdicts(("routing",), state_dir)
    tight = results["tight/halves"]
    assert tight.passed, tight  # type: ignore[attr-defined]


def test_timeout_counts_a_fault_delay_first_and_skips_a_route_that_aborts_everything(state_dir: Path) -> None:
    results, skipped = verdicts(("timeout",), state_dir)
    slow = results["slow/delayed"]
    assert slow.passed and "an injected 0.3s delay" in slow.detail, slow  # type: ignore[attr-defined]
    assert "every request is aborted with 500" in skipped["broken/default"]


def test_tracing_checks_the_shape_of_a_chain_that_answers_an_error(state_dir: Path) -> None:
    """deep answers after 2 s, mid gives up after 1 s: the chain answers 502, and is traced whole."""
    deep = load_mesh(CATALOG).service("deep").instances[0]
    address = (deep.host.local_address, deep.app_port)
    set_fault(address, {"delay": "2s"})
    try:
        results, _ = verdicts(("tracing",), state_dir)
    finally:
        set_fault(address, {})
    chain = results["front -> mid -> deep"]
    assert chain.passed and "answered 502" in chain.detail, chain  # type: ignore[attr-defined]
