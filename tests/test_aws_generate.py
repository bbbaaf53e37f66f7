"""generate --target aws: the root configuration per flavor, its data, and what each flavor loses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.errors import CatalogError, UserError
from meshgen.model import load_mesh
from meshgen.render.document import parse_config, to_config
from meshgen.render.envoy.validate import find_envoy, stand_in_certificates
from meshgen.render.terraform import AwsOptions, render_aws
from tests.support import EXAMPLES, REPO

SHOP = REPO / "examples/shop/catalog.yaml"
TCP = REPO / "examples/tcp/catalog.yaml"


def shop_root(tmp_path: Path, flavor: str, **options: str) -> tuple[dict[str, str], list[str]]:
    root = render_aws(load_mesh(SHOP), tmp_path, AwsOptions(flavor=flavor, default_image="demo:1", **options))  # type: ignore[arg-type]
    return root.files, root.warnings


def test_ecs_envoy_root_has_fixed_files_data_and_one_config_per_version(tmp_path: Path) -> None:
    files, warnings = shop_root(tmp_path, "ecs-envoy")
    # Renewal by `meshgen aws certs rotate`; what CloudWatch does not take of the metrics; the shop's
    # gateway is not built on AWS yet.
    assert [w.split(":")[0] for w in warnings] == ["certificates", "metrics", "gateway public"]
    assert sorted(f for f in files if not f.startswith("envoy/")) == [
        "LIMITATIONS.md",
        "main.tf",
        "network.tf",
        "outputs.tf",
        "providers.tf",
        "terraform.tfvars.json",
        "variables.tf",
        "versions.tf",
    ]
    assert sorted(f for f in files if f.startswith("envoy/")) == [
        f"envoy/{n}.yaml"
        for n in [
            "catalog-v1",
            "checkout-v1",
            "frontend-v1",
            "inventory-v1",
            "orders-v1",
            "orders-v2",
            "users-v1",
            "users-v2",
        ]
    ]
    data = json.loads(files["terraform.tfvars.json"])
    assert data["namespace_name"] == "shop.local" and data["tracing"] == {"kind": "xray"}
    inventory = data["services"]["inventory-v1"]
    assert (inventory["desired_count"], inventory["port"], inventory["inbound_port"]) == (2, 8080, 15006)
    assert inventory["environment"]["MESHGEN_LISTEN"] == "127.0.0.1:8080"
    assert 'source = "' in files["main.tf"] and "/terraform/modules/ecs-envoy-service" in files["main.tf"]
    users = files["envoy/frontend-v1.yaml"]
    assert '"address":"users-v1.shop.local"' in users and '"type":"STRICT_DNS"' in users  # compact JSON
    assert "envoy.tracers.xray" in users and "dynamic_resources" not in users


def test_module_sources_are_relative_to_the_output(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "root"
    root = render_aws(load_mesh(SHOP), out, AwsOptions(default_image="x"))
    source = next(line for line in root.files["main.tf"].splitlines() if "source" in line).split('"')[1]
    assert source.startswith("../") and (out / source / "main.tf").resolve() == (
        REPO / "terraform/modules/ecs-mesh/main.tf"
    )


def test_service_connect_keeps_what_it_can_and_lists_what_it_loses(tmp_path: Path) -> None:
    files, warnings = shop_root(tmp_path, "service-connect")
    data = json.loads(files["terraform.tfvars.json"])
    users_v1 = data["services"]["users-v1"]["service_connect"]
    assert users_v1["discovery_name"] == "users"
    assert users_v1["client_aliases"] == [{"port": 8080, "dns_name": "users"}]
    assert users_v1["per_request_timeout_seconds"] == 2
    assert data["services"]["users-v2"]["service_connect"]["discovery_name"] == "users-v2"
    assert "client_aliases" not in data["services"]["users-v2"]["service_connect"]
    assert (
        "users: no traffic split: every call to `users` goes to version v1; version v2 gets no traffic through "
        "the name `users` (it is reachable only by its own discovery name users-v2)"
    ) in warnings
    assert "users/canary-testers: no request matching (prefix / header x-canary=true); the route is ignored" in warnings
    assert "users/split: no weighted split (v1 90%, v2 10%); every call goes to version v1" in warnings
    assert "catalog/search: no fault injection (delay 300ms to 50%, only with header x-chaos=delay)" in warnings
    assert "orders/stable: no traffic mirroring (20% to v2)" in warnings
    assert "frontend: no rate limit (200 requests per 1s, burst 400)" in warnings
    assert files["LIMITATIONS.md"].count("\n- ") == len(warnings)
    assert not any(f.startswith("envoy/") for f in files)


COLOURS = """
mesh: {name: colours}
services:
  x:
    port: 8080
    versions:
      red: {instances: [h1], image: "x:1"}
      white: {instances: [h2], image: "x:1"}
      blue: {instances: [h3], image: "x:1"}
      black: {instances: [h4], image: "x:1"}
    routes: [{to: {red: 40, white: 20, blue: 20, black: 20}}]
"""


def test_service_connect_names_the_one_version_that_gets_the_traffic(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(COLOURS)
    warnings = render_aws(load_mesh(path), tmp_path / "out", AwsOptions(flavor="service-connect")).warnings
    assert warnings[0] == (
        "x: no traffic split: every call to `x` goes to version red; versions white, blue, black get no traffic "
        "through the name `x` (each is reachable only by its own discovery name: x-white, x-blue, x-black)"
    )


def test_app_mesh_is_marked_legacy_and_maps_routes(tmp_path: Path) -> None:
    files, warnings = shop_root(tmp_path, "app-mesh")
    assert warnings[0].startswith("App Mesh is LEGACY: AWS discontinued it on 2026-09-30")
    assert "LEGACY" in files["main.tf"]
    data = json.loads(files["terraform.tfvars.json"])
    routes = data["virtual_services"]["users.shop.local"]["routes"]
    assert [r["name"] for r in routes] == ["canary-testers", "split"]
    assert routes[0]["headers"] == [{"name": "x-canary", "exact": "true"}]
    assert routes[1]["targets"] == [
        {"virtual_node": "users-v1", "weight": 90},
        {"virtual_node": "users-v2", "weight": 10},
    ]
    assert routes[1]["retry"] == {
        "max_retries": 2,
        "per_retry_timeout_ms": 500,
        "http_retry_events": ["server-error"],
        "tcp_retry_events": ["connection-error"],
    }
    node = data["virtual_nodes"]["orders-v1"]
    assert node["backends"] == ["inventory.shop.local"]
    assert node["outlier_detection"]["max_server_errors"] == 3
    assert data["egress_filter"] == "ALLOW_ALL"  # payments is external


def test_app_mesh_tcp_routes_only_split(tmp_path: Path) -> None:
    """App Mesh TCP routes match nothing; the module rejects a prefix on them (issue 13)."""
    root = render_aws(load_mesh(TCP), tmp_path, AwsOptions(flavor="app-mesh"))
    services = json.loads(root.files["terraform.tfvars.json"])["virtual_services"]
    assert services["db.tcp.local"]["routes"] == [
        {
            "name": "split",
            "targets": [{"virtual_node": "db-v1", "weight": 90}, {"virtual_node": "db-v2", "weight": 10}],
        }
    ]
    assert services["api.tcp.local"]["routes"][0]["prefix"] == "/"


def test_app_mesh_carries_grpc_retry_conditions_and_instance_ports(tmp_path: Path) -> None:
    features = REPO / "tests/testdata/catalogs/features.yaml"
    root = render_aws(load_mesh(features), tmp_path, AwsOptions(flavor="app-mesh"))
    data = json.loads(root.files["terraform.tfvars.json"])
    writes, rest = data["virtual_services"]["grpc.features.local"]["routes"]
    assert rest["retry"]["grpc_retry_events"] == ["unavailable"]  # gRPC's default retry condition
    assert "method" not in writes  # matches POST: every gRPC call is one; App Mesh has no method match for gRPC
    assert data["virtual_nodes"]["api-v1"]["port"] == 9001  # the instance's port, not the service's 9000
    assert "api -> ledger" not in " ".join(root.warnings)
    assert any(w.startswith("external ledger: not modelled") for w in root.warnings)


GATEWAYS = """
mesh: {name: gw}
services:
  web: {port: 8080, versions: {v1: {instances: [web-1]}}}
  api: {port: 8080, versions: {v1: {instances: [api-1]}}}
  rpc: {port: 50051, protocol: grpc, versions: {v1: {instances: [rpc-1]}}}
gateways:
  public:
    hosts: [gw-1]
    port: 8080
    tls: {port: 8443}
    rate_limit: {requests: 500, per: 1s}
    routes:
      - {name: api, domains: [api.example.com, api.example.org], match: {prefix: /v1/, headers: {x-tenant: eu}}, service: api}
      - {name: writes, match: {path: /submit, methods: [POST]}, service: web, rate_limit: {requests: 5, per: 1s}}
      - {name: rpc, service: rpc}
      - {name: storefront, domains: ["*", shop.example.com], service: web}
"""


def test_app_mesh_builds_a_virtual_gateway_with_a_gateway_route_per_host_name(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(GATEWAYS)
    root = render_aws(load_mesh(catalog), tmp_path / "out", AwsOptions(flavor="app-mesh"))
    gateways = json.loads(root.files["terraform.tfvars.json"])["virtual_gateways"]
    assert gateways == {
        "public": {
            "port": 8080,
            "routes": [
                {
                    "name": "api-1",
                    "virtual_service": "api.gw.local",
                    "hostname": "api.example.com",
                    "prefix": "/v1/",
                    "headers": [{"name": "x-tenant", "exact": "eu"}],
                },
                {
                    "name": "api-2",
                    "virtual_service": "api.gw.local",
                    "hostname": "api.example.org",
                    "prefix": "/v1/",
                    "headers": [{"name": "x-tenant", "exact": "eu"}],
                },
                {"name": "writes", "virtual_service": "web.gw.local", "path": "/submit"},
                # "*" answers any Host: one gateway route without a hostname match.
                {"name": "storefront", "virtual_service": "web.gw.local", "prefix": "/"},
            ],
        }
    }
    lines = [w for w in root.warnings if w.startswith("gateway ")]
    assert lines == [
        "gateway public: this flavor builds its virtual gateway (http on 8080), not its tasks: run App Mesh's "
        "Envoy image with the environment of output gateway_envoy_environment, behind a load balancer of yours",
        "gateway public: no HTTPS on 8443 serving a certificate of the mesh CA: a virtual gateway reads its "
        "certificate inside its tasks, which this flavor does not build",
        "gateway public: no rate limit (500 requests per 1s, burst 500)",
        "gateway public/writes: no method match (methods POST); App Mesh gateway routes match every method",
        "gateway public/writes: no rate limit (5 requests per 1s, burst 5)",
        "gateway public/rpc: not rendered: -> rpc speaks grpc and this flavor's virtual gateway listens for http only",
    ]
    assert "gateway_envoy_environment" in root.files["outputs.tf"]


@pytest.mark.parametrize("flavor", ["ecs-envoy", "service-connect"])
def test_gateways_are_listed_as_not_built_on_ecs(tmp_path: Path, flavor: str) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(GATEWAYS)
    root = render_aws(load_mesh(catalog), tmp_path / "out", AwsOptions(flavor=flavor, default_image="demo:1"))
    [line] = [w for w in root.warnings if w.startswith("gateway ")]
    assert line.startswith("gateway public: not built (")
    assert "; nothing takes calls from outside for it: HTTP on 8080; HTTPS on 8443 serving a certificate of the" in line
    assert "route writes: Host * path /submit methods POST -> web (rate limit 5 requests per 1s, burst 5)" in line


CANARY_PORT = """
mesh: {name: ports}
services:
  a: {port: 8080, versions: {v1: {instances: [a-1]}}, dependencies: [b]}
  b:
    port: 9000
    versions:
      v1: {instances: [b-1]}
      v2: {instances: [{host: b-2, port: 9100, inbound_port: 15106, admin_port: 15100}]}
"""


@pytest.mark.parametrize(
    ("catalog", "flavor", "ports"),
    [
        ("shop", "ecs-envoy", [15006]),
        ("shop", "service-connect", [8080]),
        ("features", "ecs-envoy", [16000]),
        ("features", "service-connect", [5432, 9001, 50051]),
        ("canary-port", "ecs-envoy", [15006, 15106]),
        ("canary-port", "service-connect", [8080, 9000, 9100]),
    ],
)
def test_the_security_group_admits_only_the_ports_that_cross_tasks(
    tmp_path: Path, catalog: str, flavor: str, ports: list[int]
) -> None:
    """ecs-envoy: callers' Envoys reach each version's Envoy inbound port; service-connect: the
    callee's proxy takes calls on the app port. Admin, app (ecs-envoy) and tracing stay in-task."""
    paths = {"shop": SHOP, "features": REPO / "tests/testdata/catalogs/features.yaml"}
    path = paths.get(catalog) or tmp_path / "catalog.yaml"
    if catalog not in paths:
        path.write_text(CANARY_PORT)
    root = render_aws(load_mesh(path), tmp_path / "out", AwsOptions(flavor=flavor, default_image="x"))
    assert json.loads(root.files["terraform.tfvars.json"])["mesh_ports"] == ports
    assert "mesh_ports         = var.mesh_ports" in root.files["main.tf"]
    assert 'resource "aws_security_group"' not in root.files["network.tf"]
    assert not [name for name, text in root.files.items() if "65535" in text and name.endswith(".tf")]


def test_versions_without_an_image_need_a_default(tmp_path: Path) -> None:
    mesh = load_mesh(SHOP)
    with pytest.raises(CatalogError) as caught:
        render_aws(mesh, tmp_path, AwsOptions())
    paths = [p.path for p in caught.value.problems]
    assert paths[:2] == ["services.frontend.versions.v1.image", "services.users.versions.v1.image"]
    assert set(paths) == {f"services.{s.name}.versions.{v.name}.image" for s in mesh.services for v in s.versions}
    assert {p.message for p in caught.value.problems} == {
        "no container image; give the version an `image`, or pass --default-image"
    }


def test_missing_modules_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="Terraform modules not found in"):
        render_aws(load_mesh(SHOP), tmp_path, AwsOptions(default_image="x", modules_dir=tmp_path / "nowhere"))


def test_cli_generate_aws_warns_on_stderr(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["generate", str(SHOP), "--target", "aws", "--flavor", "app-mesh", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "warning: App Mesh is LEGACY" in result.stderr
    assert "Terraform root, app-mesh" in result.stdout
    assert (tmp_path / "LIMITATIONS.md").exists()


@pytest.mark.envoy
@pytest.mark.parametrize("tracing", ["xray", "otel", "none"])
@pytest.mark.parametrize("catalog", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_every_ecs_task_config_passes_envoy_validation(tmp_path: Path, catalog: Path, tracing: str) -> None:
    root = render_aws(load_mesh(catalog), tmp_path, AwsOptions(default_image="x", tracing=tracing))
    envoy = find_envoy()
    for name, content in root.files.items():
        if name.startswith("envoy/"):
            # The task writes its certificate files at start; here stand-ins take their place.
            config = parse_config(content)
            stand_in_certificates(config)
            path = tmp_path / Path(name).name
            path.write_text(to_config(config))
            result = subprocess.run(
                [envoy, "--mode", "validate", "--log-level", "error", "-c", str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


# -- mutual TLS on ECS ------------------------------------------------------------------------------


def _secret_files(config: dict[str, Any]) -> dict[str, str]:
    """The certificate files a static task config names, by what they hold."""
    secrets = {s["name"]: s for s in config["static_resources"]["secrets"]}
    identity, trust = secrets["identity"]["tls_certificate"], secrets["trust"]["validation_context"]
    return {
        "cert_file": identity["certificate_chain"]["filename"],
        "key_file": identity["private_key"]["filename"],
        "ca_file": trust["trusted_ca"]["filename"],
    }


CATALOGS = [*EXAMPLES, REPO / "tests/testdata/catalogs/features.yaml"]


@pytest.mark.parametrize(
    "catalog", CATALOGS, ids=[p.parent.name if p.name == "catalog.yaml" else p.stem for p in CATALOGS]
)
def test_each_task_writes_exactly_the_files_its_config_names(tmp_path: Path, catalog: Path) -> None:
    """The files each version's tasks write (tfvars tls, which the module's command writes) are read
    back out of that version's config, not spelled here."""
    root = render_aws(load_mesh(catalog), tmp_path, AwsOptions(default_image="x"))
    data = json.loads(root.files["terraform.tfvars.json"])
    mesh = load_mesh(catalog)
    assert data["identities"] == sorted(s.name for s in mesh.services)
    for name, entry in data["services"].items():
        files = _secret_files(parse_config(root.files[f"envoy/{name}.yaml"]))
        assert entry["tls"] == files, name
        assert all(f.startswith("/dev/shm/") for f in files.values())  # memory, never the task's disk
    # Every version of a service presents the service's one identity: one secret per service.
    assert "execution_role_arn = each.value.tls == null ? module.mesh.execution_role_arn" in root.files["main.tf"]
    assert "module.mesh.identities[each.value.service]" in root.files["main.tf"]


def test_mtls_off_gives_tasks_no_identity(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        SHOP.read_text().replace("mesh:\n  name: shop\n", "mesh:\n  name: shop\n  security: {mtls: 'off'}\n")
    )
    mesh = load_mesh(path)
    assert not mesh.security.enabled
    root = render_aws(mesh, tmp_path / "out", AwsOptions(default_image="x"))
    data = json.loads(root.files["terraform.tfvars.json"])
    assert data["identities"] == [] and not any("tls" in entry for entry in data["services"].values())
    assert not any("private_key" in text for name, text in root.files.items() if name.startswith("envoy/"))
    sc = render_aws(mesh, tmp_path / "sc", AwsOptions(flavor="service-connect", default_image="x"))
    assert json.loads(sc.files["terraform.tfvars.json"])["tls"] is None


@pytest.mark.parametrize("flavor", ["ecs-envoy", "service-connect", "app-mesh"])
def test_no_key_material_in_any_generated_root(tmp_path: Path, flavor: str) -> None:
    """Not even with the catalog's own CA: a root names secrets and files, never their content."""
    from meshgen.durations import Duration
    from meshgen.pki.certificates import cert_pem, create_ca, key_pem

    ca, key = create_ca("shop", Duration(3_600_000 * 24 * 30))
    (tmp_path / "ca.pem").write_bytes(cert_pem(ca))
    (tmp_path / "ca-key.pem").write_bytes(key_pem(key))
    text = SHOP.read_text().replace(
        "mesh:\n  name: shop\n", "mesh:\n  name: shop\n  security: {ca: {cert: ca.pem, key: ca-key.pem}}\n"
    )
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    root = render_aws(load_mesh(path), tmp_path / "out", AwsOptions(flavor=flavor, default_image="x"))
    secret_bytes = [key_pem(key).decode().splitlines()[1], cert_pem(ca).decode().splitlines()[1]]
    for name, content in root.files.items():
        assert "-----BEGIN" not in content, name
        assert not any(line in content for line in secret_bytes), name


def test_ecs_refuses_a_leaf_lifetime_its_tasks_cannot_be_renewed_within(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        SHOP.read_text().replace("mesh:\n  name: shop\n", "mesh:\n  name: shop\n  security: {leaf_lifetime: 30m}\n")
    )
    with pytest.raises(CatalogError) as caught:
        render_aws(load_mesh(path), tmp_path / "out", AwsOptions(default_image="x"))
    [problem] = caught.value.problems
    assert problem.path == "mesh.security.leaf_lifetime" and problem.line is not None
    assert "30m is too short for ECS" in problem.message and "at least 1h" in problem.message
    result = CliRunner().invoke(
        main, ["generate", str(path), "--target", "aws", "--default-image", "x", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    # service-connect and app-mesh have no such renewal: ECS renews Service Connect's certificates.
    render_aws(load_mesh(path), tmp_path / "sc", AwsOptions(flavor="service-connect", default_image="x"))
