"""Golden-file tests of rendered sidecars, table-driven like Consul's Envoy bootstrap tests.

Each case first asserts the intermediate values the renderer works from (the resolved model),
then compares every rendered file with tests/testdata/<case>.golden. To rewrite goldens on
purpose after an intended change: MESHGEN_UPDATE_GOLDENS=1 pytest tests/test_envoy_golden.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from meshgen.durations import Duration
from meshgen.model import Mesh, load_mesh
from meshgen.render.envoy import Layout, render_sidecar
from tests.support import REPO, TESTDATA

LAYOUT = Layout(PurePosixPath("/etc/meshgen/envoy"), PurePosixPath("/etc/meshgen/tls"))
UPDATE = os.environ.get("MESHGEN_UPDATE_GOLDENS") == "1"


def _shop_frontend(mesh: Mesh) -> None:
    users = mesh.service("users")
    assert [r.name for r in users.routes] == ["canary-testers", "split"]
    assert users.routes[1].weights == (("v1", 90), ("v2", 10))
    assert users.routes[0].retries.attempts == 3  # service overrides the mesh default of 2
    assert users.routes[0].retries.per_try_timeout == Duration(500)  # inherited from mesh defaults
    assert users.routes[0].timeout == Duration(2000)
    assert mesh.service("catalog").routes[0].fault is not None


def _shop_checkout(mesh: Mesh) -> None:
    checkout = mesh.service("checkout")
    payments = next(d for d in checkout.dependencies if d.target == "payments")
    assert payments.external and payments.rate_limit is not None
    assert mesh.external("payments").sni == "api.payments.example"
    assert checkout.routes[0].retries.attempts == 1


def _shop_orders(mesh: Mesh) -> None:
    orders = mesh.service("orders")
    assert orders.routes[0].mirror is not None and orders.routes[0].mirror.version == "v2"
    assert orders.circuit_breaker.consecutive_5xx == 3
    assert orders.circuit_breaker.max_pending_requests == 256  # mesh default


def _features_api(mesh: Mesh) -> None:
    api = mesh.service("api")
    assert [d.local_port for d in api.dependencies] == [None, 5432, 7000]
    grpc = mesh.service("grpc")
    assert grpc.routes[0].retries.attempts == 1
    assert grpc.routes[1].retries.on == (
        "connect-failure",
        "refused-stream",
        "reset",
        "unavailable",
        "retriable-status-codes",
    )
    assert mesh.tracing is not None and not mesh.tracing.collector_is_ip


def _features_grpc(mesh: Mesh) -> None:
    instance = mesh.service("grpc").version("v2").instances[0]
    assert instance.host.local_address == "127.0.0.1"  # non-loopback host: local listeners on loopback


def _minimal(mesh: Mesh) -> None:
    route = mesh.service("echo").routes[0]
    assert route.timeout == Duration(5000) and route.retries.attempts == 1  # built-in defaults


@dataclass(frozen=True)
class Case:
    name: str
    catalog: Path
    instance: str
    check: Callable[[Mesh], None]


CASES = [
    Case("minimal-client", REPO / "examples/minimal/catalog.yaml", "client.v1.client-1", _minimal),
    Case("shop-frontend", REPO / "examples/shop/catalog.yaml", "frontend.v1.web-1", _shop_frontend),
    Case("shop-checkout", REPO / "examples/shop/catalog.yaml", "checkout.v1.checkout-1", _shop_checkout),
    Case("shop-orders", REPO / "examples/shop/catalog.yaml", "orders.v1.orders-1", _shop_orders),
    Case("features-api", TESTDATA / "catalogs/features.yaml", "api.v1.api-1", _features_api),
    Case("features-grpc", TESTDATA / "catalogs/features.yaml", "grpc.v2.shared-1", _features_grpc),
    Case("features-db", TESTDATA / "catalogs/features.yaml", "db.v1.db-1", lambda mesh: None),
]


def _golden_text(files: dict[str, str]) -> str:
    return "".join(f"=== {name} ===\n{content}" for name, content in files.items())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sidecar_matches_golden(case: Case) -> None:
    mesh = load_mesh(case.catalog)
    case.check(mesh)
    instance = next(i for i in mesh.instances if i.id == case.instance)
    rendered = _golden_text(render_sidecar(mesh, instance, LAYOUT.sidecar(instance.id)))
    golden = TESTDATA / f"{case.name}.golden"
    if UPDATE:
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), f"missing {golden}: run with MESHGEN_UPDATE_GOLDENS=1 to create it"
    assert rendered == golden.read_text(encoding="utf-8")
