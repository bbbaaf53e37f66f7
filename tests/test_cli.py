"""The CLI in-process: exit codes, output, and the files each command writes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.render.output import MANIFEST
from tests.support import EXAMPLES, REPO

SHOP = REPO / "examples/shop/catalog.yaml"
MINIMAL = REPO / "examples/minimal/catalog.yaml"


def run(*args: str) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_schema_is_json_schema_with_descriptions() -> None:
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["required"]) == {"mesh", "services"}
    retries = schema["$defs"]["Retries"]["properties"]
    assert "first included" in retries["attempts"]["description"]
    assert retries["per_try_timeout"]["anyOf"][0]["pattern"]  # durations are typed strings


def test_validate_examples() -> None:
    for catalog in EXAMPLES:
        result = run("validate", catalog)
        assert result.exit_code == 0, result.output
        assert "valid" in result.output


def test_validate_with_envoy(monkeypatch: pytest.MonkeyPatch) -> None:
    """--envoy passes what Envoy accepts and fails (exit 2, with Envoy's reason) on a config Envoy
    rejects: the renderer is made to emit a negative connect timeout, which only Envoy checks."""
    result = run("validate", MINIMAL, "--envoy")
    assert result.exit_code == 0, result.output + str(result.exception)
    assert result.stdout.endswith("Envoy accepted all 2\n")

    from meshgen.render.envoy import check

    real = check.render_envoy

    def broken(*args: Any, **kwargs: Any) -> dict[str, str]:
        files = real(*args, **kwargs)
        return {path: text.replace('"connect_timeout": "', '"connect_timeout": "-') for path, text in files.items()}

    monkeypatch.setattr(check, "render_envoy", broken)
    assert run("validate", MINIMAL).exit_code == 0  # meshgen's own checks do not see it
    rejected = run("validate", MINIMAL, "--envoy")
    assert rejected.exit_code == 2, rejected.output
    assert "meshgen: envoy rejected" in rejected.stderr and "Expected positive duration" in rejected.stderr


def test_generate_writes_one_directory_per_instance_deterministically(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert run("generate", SHOP, "-o", first, "--config-root", "/etc/meshgen/envoy").exit_code == 0
    assert run("generate", SHOP, "-o", second, "--config-root", "/etc/meshgen/envoy").exit_code == 0
    assert _tree(first) == _tree(second)  # byte-identical
    sidecars = sorted(p.name for p in first.iterdir() if p.is_dir())
    assert sidecars == [
        "catalog.v1.catalog-1",
        "checkout.v1.checkout-1",
        "frontend.v1.web-1",
        "inventory.v1.inventory-1",
        "inventory.v1.inventory-2",
        "orders.v1.orders-1",
        "orders.v2.orders-2",
        "public.gateway.gateway-1",  # the gateway's Envoy: a sidecar's files, no app
        "users.v1.users-1",
        "users.v2.users-2",
    ]
    assert sorted(p.name for p in (first / "users.v1.users-1").iterdir()) == [
        "cds.yaml",
        "envoy.yaml",
        "lds.yaml",
        "rds-inbound.yaml",
        "sds-identity.yaml",  # mutual TLS by default: its identity and the mesh CA bundle, by SDS
        "sds-trust.yaml",
    ]
    bootstrap = (first / "frontend.v1.web-1" / "envoy.yaml").read_text()
    assert '"path": "/etc/meshgen/envoy/frontend.v1.web-1/lds.yaml"' in bootstrap


def test_generate_is_scoped_to_what_an_instance_calls(tmp_path: Path) -> None:
    assert run("generate", SHOP, "-o", tmp_path).exit_code == 0
    inventory = (tmp_path / "inventory.v1.inventory-1" / "cds.yaml").read_text()
    assert "users.v1" not in inventory and "external.payments" not in inventory
    checkout = (tmp_path / "checkout.v1.checkout-1" / "cds.yaml").read_text()
    assert '"name": "external.payments"' in checkout and '"name": "orders.v2"' in checkout
    assert "users.v1" not in checkout


def test_generate_again_changes_nothing_and_removes_stale_files(tmp_path: Path) -> None:
    assert run("generate", SHOP, "-o", tmp_path).exit_code == 0
    again = run("generate", SHOP, "-o", tmp_path)
    assert "0 files added, 0 changed, 0 removed, 64 unchanged" in again.output  # 9 sidecars, 1 gateway
    (tmp_path / "notes.txt").write_text("mine")
    smaller = run("generate", MINIMAL, "-o", tmp_path)
    assert "64 removed" in smaller.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [MANIFEST, "client.v1.client-1", "echo.v1.echo-1", "notes.txt"]
    )


def test_generate_rejects_relative_config_root(tmp_path: Path) -> None:
    result = run("generate", SHOP, "-o", tmp_path / "out", "--config-root", "relative/dir")
    assert result.exit_code == 2  # a wrong option is wrong input, like a usage error
    assert "--config-root must be an absolute path" in result.stderr
    assert not (tmp_path / "out").exists()


def test_diff_reports_a_plan_per_sidecar(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    shutil.copy(SHOP, catalog)
    out = tmp_path / "out"
    assert run("diff", catalog, "-o", out, "--exit-code").exit_code == 1  # everything is new
    assert run("generate", catalog, "-o", out).exit_code == 0
    unchanged = run("diff", catalog, "-o", out, "--exit-code")
    assert unchanged.exit_code == 0
    assert unchanged.output.strip() == "No changes: OUT matches the catalog."

    catalog.write_text(catalog.read_text().replace("to: {v1: 90, v2: 10}", "to: {v1: 50, v2: 50}"))
    before = _tree(out)
    result = run("diff", catalog, "-o", out)
    assert result.exit_code == 0
    assert _tree(out) == before  # diff never writes
    changed = [line.strip() for line in result.output.splitlines() if line.startswith("~ ")]
    assert changed == ["~ frontend.v1.web-1"]  # only the caller of users is affected
    # Only the route file changes, so a running Envoy swaps routes and keeps its listeners.
    assert "    ~ rds-outbound.yaml" in result.output and "~ lds.yaml" not in result.output
    assert re.search(r'^\s+-\s+"weight": 90$', result.output, re.M)
    assert re.search(r'^\s+\+\s+"weight": 50,?$', result.output, re.M)
    assert "Plan: 0 files to add, 1 to change, 0 to remove" in result.output


def test_graph_mermaid_and_dot() -> None:
    mermaid = run("graph", SHOP)
    assert mermaid.exit_code == 0
    assert mermaid.output.startswith("flowchart LR\n")
    assert 'svc_users -->|"split: 90%"| ver_users_v1' in mermaid.output
    assert 'svc_orders -.->|"stable: mirror 20%"| ver_orders_v2' in mermaid.output
    assert "svc_checkout ==> ext_payments" in mermaid.output
    assert 'gw_public ==>|"storefront: * prefix /"| svc_frontend' in mermaid.output  # the way in
    dot = run("graph", SHOP, "--format", "dot")
    assert dot.exit_code == 0
    assert dot.output.startswith('digraph "shop" {')
    assert 'svc_users -> ver_users_v2 [label="canary-testers [prefix / header x-canary=true]: 100%"];' in dot.output
    assert 'gw_public -> svc_frontend [penwidth=2, label="storefront: * prefix /"];' in dot.output


def test_version_flag() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.output.startswith("meshgen, version ")
