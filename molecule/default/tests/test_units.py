"""Every unit the inventory asks for is enabled and running, on the hosts it belongs to."""

from __future__ import annotations

from conftest import app_unit, apps, assert_unit_running, demo_apps, host_vars, sidecars

testinfra_hosts = ["mesh", "trace_collector"]


def test_sidecars_are_enabled_and_running(host):
    for sidecar in sidecars(host):
        assert_unit_running(host, f"envoy@{sidecar['name']}.service")


def test_demo_app_instances_are_enabled_and_running(host):
    for instance in demo_apps(host):
        assert_unit_running(host, f"meshgen-demo@{instance['name']}.service")


def test_apps_are_enabled_and_running(host):
    for instance in apps(host):
        assert_unit_running(host, app_unit(instance))


def test_collector_runs_only_on_collector_hosts(host):
    variables = host_vars(host)
    if "trace_collector" in variables["group_names"]:
        assert_unit_running(host, "meshgen-collector.service")
    else:
        assert not host.service("meshgen-collector.service").is_running


def test_hosts_without_sidecars_run_no_envoy(host):
    if not host_vars(host).get("envoy_sidecars"):
        assert host.run("systemctl list-units --no-legend --plain 'envoy@*'").stdout.strip() == ""


SANDBOX = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictNamespaces": "yes",
}


def _properties(host, unit: str, names: list[str]) -> dict[str, str]:
    command = f"systemctl show {unit} " + " ".join(f"--property {n}" for n in names)
    return dict(line.split("=", 1) for line in host.check_output(command).splitlines())


def test_sidecars_run_sandboxed_as_the_envoy_user(host):
    for sidecar in sidecars(host):
        unit = f"envoy@{sidecar['name']}.service"
        properties = _properties(host, unit, [*SANDBOX, "User", "MainPID", "ReadOnlyPaths"])
        assert {k: properties[k] for k in SANDBOX} == SANDBOX, properties
        assert properties["User"] == "envoy" and "/etc/envoy" in properties["ReadOnlyPaths"], properties
        # The process runs as that user, with no capabilities at all.
        status = host.check_output(f"cat /proc/{properties['MainPID']}/status")
        assert f"Uid:\t{host.user('envoy').uid}\t" in status, status
        assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status, status
