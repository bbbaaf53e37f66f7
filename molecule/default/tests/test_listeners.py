"""Each process listens on its host's own address, where the generated config says."""

from __future__ import annotations

import yaml
from conftest import (
    GENERATED,
    app_unit,
    apps,
    assert_listening,
    demo_apps,
    gateway_envoys,
    host_vars,
    listeners,
    sidecars,
)

testinfra_hosts = ["mesh", "trace_collector"]

ADMIN_PORT = 15000


def _rendered_listeners(sidecar: str) -> dict[str, str]:
    """Listener name -> address:port, from the sidecar's generated lds.yaml."""
    document = yaml.safe_load((GENERATED / "envoy" / sidecar / "lds.yaml").read_text())
    found = {}
    for listener in document["resources"]:
        socket = listener["address"]["socket_address"]
        found[listener["name"]] = f"{socket['address']}:{socket['port_value']}"
    return found


def test_sidecar_listeners_are_bound_to_the_host_address(host):
    variables = host_vars(host)
    address = variables["meshgen_address"]
    for sidecar in sidecars(host):
        unit = f"envoy@{sidecar['name']}.service"
        rendered = _rendered_listeners(sidecar["name"])
        if sidecar["name"] in gateway_envoys():  # the way in: the gateway's port, no inbound
            assert rendered["gateway_http"] == f"{address}:8081" and "inbound" not in rendered, rendered
        else:
            assert rendered["inbound"] == f"{address}:15006"
        if sidecar["service"] in ("caller", "auditor"):  # the services with dependencies: an outbound listener
            assert rendered["outbound_http"] == f"{variables['meshgen_local_address']}:15001"
        if sidecar["service"] == "auditor":  # and a listener of its own for the caller, on the caller's port
            assert rendered["outbound_http.caller"] == "127.0.80.200:8080"
        for bound in [*rendered.values(), f"{address}:15090"]:  # and the stats listener Prometheus scrapes
            assert_listening(host, bound, unit)


def test_demo_apps_listen_where_configured(host):
    for instance in demo_apps(host):
        assert instance["listen"].endswith(":8080")
        assert_listening(host, instance["listen"], f"meshgen-demo@{instance['name']}.service")


def test_apps_listen_where_configured(host):
    for instance in apps(host):
        assert_listening(host, instance["listen"], app_unit(instance))


def test_collector_listens_on_9411(host):
    variables = host_vars(host)
    if "trace_collector" not in variables["group_names"]:
        return
    listen = variables.get("trace_collector_listen")
    assert listen == f"{variables['meshgen_address']}:9411", f"trace_collector_listen: {listen!r}"
    assert_listening(host, listen, "meshgen-collector.service")


def test_admin_listens_only_on_the_host_loopback_address(host):
    variables = host_vars(host)
    for sidecar in sidecars(host):
        assert sidecar["admin"] == f"{variables['meshgen_local_address']}:{ADMIN_PORT}"
        assert_listening(host, sidecar["admin"], f"envoy@{sidecar['name']}.service")
    on_admin_port = [a for a in listeners(host) if a.endswith(f":{ADMIN_PORT}")]
    assert on_admin_port, "no admin listener at all"
    wildcard = [a for a in on_admin_port if a.rsplit(":", 1)[0] in ("0.0.0.0", "*", "[::]", "::")]
    assert not wildcard, f"admin port {ADMIN_PORT} bound on a wildcard address: {wildcard}"
    assert all(a.startswith("127.") for a in on_admin_port), on_admin_port
