"""The way in and the mesh's numbers, on-prem: the gateway `public` on collector-1 (an Envoy with
no app, through the same envoy role) routes outside callers to the caller; the prometheus role
runs Debian's Prometheus there, on the host's address only, scraping every sidecar's and the
gateway's stats listener, labelled mesh, service, version and instance; a configuration promtool
refuses never replaces the live one."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from conftest import assert_unit_running, listeners, mesh, run_site

from meshgen.verify.http import send

testinfra_hosts = ["collector-1"]

GATEWAY = ("127.0.80.9", 8081)
PROMETHEUS = "127.0.80.9:9090"
CONFIG = "/etc/prometheus/prometheus.yml"
UNIT = "prometheus.service"


def _api(path: str, **query: str) -> object:
    url = f"http://{PROMETHEUS}/api/v1/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as response:
        document = json.load(response)
    assert document["status"] == "success", document
    return document["data"]


def _gateway_requests_to_caller() -> float:
    """What Prometheus last scraped of the gateway's requests to the caller (0 before any)."""
    query = (
        'sum(envoy_cluster_upstream_rq_total{mesh="molecule",instance="public.gateway.collector-1",'
        'envoy_cluster_name="caller.v1"})'
    )
    result = _api("query", query=query)
    assert isinstance(result, dict)
    return float(result["result"][0]["value"][1]) if result["result"] else 0.0


def test_a_request_through_the_gateway_reaches_the_callers_app():
    replies = [send(*GATEWAY, "/", timeout=10) for _ in range(5)]
    assert all(r.status == 200 and r.body.get("service") == "caller" for r in replies), replies


def test_prometheus_runs_on_the_hosts_address_only(host):
    """The package's own unit, as its own user, on the mesh address alone (the install did not
    start it on :9090 of every address). Its sockets are not looked up by process: the unit runs
    in a user namespace of its own (PrivateUsers=), whose /proc root in the container may not read."""
    assert_unit_running(host, UNIT)
    on_its_port = [a for a in listeners(host) if a.endswith(":9090")]
    assert on_its_port == [PROMETHEUS], f"Prometheus's port bound elsewhere too: {on_its_port}"
    assert _api("status/buildinfo")  # and it is Prometheus that answers there
    pid = int(host.check_output(f"systemctl show --property MainPID --value {UNIT}"))
    assert host.process.get(pid=pid).user == "prometheus"


def test_every_sidecar_and_the_gateway_is_scraped_with_its_labels():
    expected = {i.id: (i.service, i.version) for i in mesh().proxies}
    deadline = time.monotonic() + 60
    while True:
        data = _api("targets", state="active")
        assert isinstance(data, dict)
        found = {t["labels"]["instance"]: t for t in data["activeTargets"]}
        healthy = {name for name, t in found.items() if t["health"] == "up"}
        if healthy == set(expected) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert set(found) == set(expected), sorted(found)
    assert healthy == set(expected), {name: t["lastError"] for name, t in found.items()}
    for name, (service, version) in expected.items():
        labels = found[name]["labels"]
        assert (labels["mesh"], labels["service"], labels["version"]) == ("molecule", service, version), labels


def test_requests_through_the_gateway_show_in_prometheus():
    before = _gateway_requests_to_caller()
    sent = 20
    assert all(send(*GATEWAY, "/", timeout=10).status == 200 for _ in range(sent))
    deadline = time.monotonic() + 60  # the role scrapes every 15 s
    while (after := _gateway_requests_to_caller()) < before + sent and time.monotonic() < deadline:
        time.sleep(2)
    assert after >= before + sent, f"Prometheus saw {after - before} of {sent} requests"


def test_a_configuration_promtool_refuses_is_not_applied(host):
    live, pid = host.file(CONFIG).content_string, host.check_output(f"systemctl show --property MainPID --value {UNIT}")
    # Prometheus refuses a scrape timeout longer than the interval.
    job = {"job_name": "meshgen-sidecars", "metrics_path": "/stats/prometheus", "honor_labels": True}
    broken = {"prometheus_scrape_job": {**job, "scrape_interval": "5s", "scrape_timeout": "10s"}}
    result = run_site("--tags", "prometheus", limit="prometheus", extra_vars=broken)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "promtool" in output or "failed to validate" in output, output
    assert host.file(CONFIG).content_string == live
    assert host.check_output(f"systemctl show --property MainPID --value {UNIT}") == pid
    assert _api("status/config")  # still answering, with the old configuration
