"""Where an app finds its dependencies: the variables meshgen sets, the hosts file's names."""

from __future__ import annotations

from pathlib import Path

from meshgen.model import load_mesh
from meshgen.model.addresses import app_environment, hosts_file_entries, instance_environment, variable_prefix

CATALOG = """
mesh: {name: addresses}
hosts:
  web-1: {address: 127.0.30.1, hosts_file: true}
  api-1: {address: 127.0.30.2}
  db-1: {address: 127.0.30.3}
  other-1: {address: 127.0.30.4}
services:
  web:
    port: 8080
    edge: true
    versions: {v1: {instances: [web-1]}}
    dependencies:
      - api                                         # by name, through HTTP_PROXY
      - {service: order-db, address: 127.0.30.200}  # its own address, on its port
      - {service: ledger, local_port: 9091}         # its own port on the local address
      - payments
  api:
    port: 8080
    versions: {v1: {instances: [api-1]}}
  ledger:
    port: 8080
    versions: {v1: {instances: [other-1]}}
  order-db:
    port: 5432
    protocol: tcp
    versions: {v1: {instances: [db-1]}}
external:
  payments: {address: 127.0.30.50, port: 443, tls: true, hosts: [pay.example.com]}
"""


def mesh(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    return load_mesh(path)


def test_variables_name_every_dependency(tmp_path: Path) -> None:
    found = mesh(tmp_path)
    env = app_environment(found, found.service("web").instances[0])
    assert env == {
        "API_URL": "http://api",
        "LEDGER_SERVICE_HOST": "127.0.30.129",
        "LEDGER_SERVICE_PORT": "9091",
        "LEDGER_URL": "http://127.0.30.129:9091",
        "ORDER_DB_SERVICE_HOST": "127.0.30.200",
        "ORDER_DB_SERVICE_PORT": "5432",
        "ORDER_DB_URL": "tcp://127.0.30.200:5432",
        "PAYMENTS_URL": "http://payments",
        "HTTP_PROXY": "http://127.0.30.129:15001",
        "http_proxy": "http://127.0.30.129:15001",
        "NO_PROXY": "127.0.0.1,127.0.30.129,127.0.30.200,::1,localhost",
        "no_proxy": "127.0.0.1,127.0.30.129,127.0.30.200,::1,localhost",
    }


def test_every_target_tells_an_app_who_it_is_then_its_dependencies_then_its_own_env(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        CATALOG.replace(
            "versions: {v1: {instances: [web-1]}}",
            "versions: {v1: {instances: [{host: web-1, command: [app], env: {API_URL: mine, MESHGEN_LISTEN: x, Z: z}}]}}",
        )
    )
    found = load_mesh(path)
    instance = found.service("web").instances[0]
    env = instance_environment(found, instance)
    assert list(env)[:8] == [
        "MESHGEN_MESH",
        "MESHGEN_SERVICE",
        "MESHGEN_VERSION",
        "MESHGEN_INSTANCE",
        "MESHGEN_LISTEN",
        "MESHGEN_PROTOCOL",
        "MESHGEN_OUTBOUND",
        "MESHGEN_FORWARD_HEADERS",
    ]
    assert env["MESHGEN_INSTANCE"] == "web.v1.web-1" and env["MESHGEN_OUTBOUND"] == "127.0.30.129:15001"
    assert {k: v for k, v in env.items() if not k.startswith("MESHGEN_")} == {
        **app_environment(found, instance),
        "API_URL": "mine",  # the instance's own env wins
        "Z": "z",
    }
    assert env["MESHGEN_LISTEN"] == "x"


def test_an_app_that_calls_nothing_gets_no_proxy(tmp_path: Path) -> None:
    found = mesh(tmp_path)
    assert app_environment(found, found.service("api").instances[0]) == {}


def test_the_hosts_file_names_dependencies_with_addresses_of_their_own(tmp_path: Path) -> None:
    found = mesh(tmp_path)
    hosts = {h.name: h for h in found.hosts}
    assert hosts_file_entries(found, hosts["web-1"]) == {"127.0.30.200": ("order-db", "order-db.mesh")}
    assert hosts_file_entries(found, hosts["api-1"]) == {}  # hosts_file not set


def test_variable_names() -> None:
    assert variable_prefix("order-db") == "ORDER_DB"
    assert variable_prefix("3d-render") is None  # no variable name starts with a digit
