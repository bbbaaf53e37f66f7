"""Every catalog field, in every AWS flavor, is carried or listed as lost (issue 13).

The schema is walked field by field (`services.*.circuit_breaker.max_retries`). Each flavor's
table in meshgen.render.terraform.fidelity must classify every field; a field added to the
catalog fails here until it is. Then each field is set, on a small catalog, to a value other than
the built-in default (PROBES): a field a flavor carries must change the generated root, a field
it loses must add a limitation line that names the value.
"""

from __future__ import annotations

import copy
import functools
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from meshgen.catalog.schema import Catalog
from meshgen.model import load_mesh
from meshgen.render.terraform import FLAVORS, AwsOptions, render_aws
from meshgen.render.terraform.fidelity import FIELDS, Carried, Lost, Moot
from tests.support import REPO


def _models(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """(path suffix, model) for every catalog object a field holds: `.*` per dict value, `[]` per list item."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _models(args[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _models(arg)
    elif origin is dict:
        yield from ((f".*{suffix}", model) for suffix, model in _models(args[1]))
    elif origin is list:
        yield from ((f"[]{suffix}", model) for suffix, model in _models(args[0]))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation


def catalog_fields(model: type[BaseModel] = Catalog, prefix: str = "") -> Iterator[str]:
    """Every leaf field of the catalog schema, as a path."""
    for name, info in model.model_fields.items():
        nested = list(_models(info.annotation))
        if not nested:
            yield f"{prefix}{name}"
        for suffix, child in nested:
            yield from catalog_fields(child, f"{prefix}{name}{suffix}.")


def test_the_walk_sees_nested_lists_and_maps() -> None:
    fields = set(catalog_fields())
    assert {
        "mesh.defaults.retries.backoff.base",
        "services.*.circuit_breaker.max_retries",
        "services.*.routes[].match.headers.*.regex",
        "services.*.versions.*.instances[].env",
        "external.*.retries.another_host",
    } <= fields
    assert "services.*.routes[].match.headers" not in fields  # a map of objects is not a leaf


@pytest.mark.parametrize("flavor", FLAVORS)
def test_every_catalog_field_is_classified(flavor: str) -> None:
    fields = set(catalog_fields())
    table = FIELDS[flavor]
    assert sorted(fields - set(table)) == [], f"{flavor}: say how each is carried, or why it is lost or moot"
    assert sorted(set(table) - fields) == [], f"{flavor}: the schema has no such fields"
    for path, fate in table.items():
        reason = fate.how if isinstance(fate, Carried) else fate.what if isinstance(fate, Lost) else fate.why
        assert reason.strip(), f"{flavor} {path}: give the reason"


# -- probes ---------------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "mesh": {
        "name": "probe",
        "defaults": {"retries": {"attempts": 3, "methods": "all"}},
        "tracing": {"collector": "collector.example:9411"},
    },
    "services": {
        "web": {
            "port": 8080,
            "edge": True,  # so that an authorization rule for outside callers changes something
            "versions": {"v1": {"instances": [{"host": "h1"}]}},
            "dependencies": [
                {"service": "api", "rate_limit": {"requests": 10, "per": "1s"}},
                {"service": "db"},
                {"service": "ext"},
                {"service": "g"},
            ],
        },
        "api": {
            "port": 8080,
            "versions": {"v1": {"instances": [{"host": "h2"}]}, "v2": {"instances": [{"host": "h3"}]}},
            "routes": [
                {
                    "name": "main",
                    "to": {"v1": 90, "v2": 10},
                    "fault": {"delay": {"duration": "1s", "percent": 10}, "abort": {"status": 503, "percent": 5}},
                    "mirror": {"to": "v2", "percent": 10},
                }
            ],
            "health_check": {"path": "/healthz"},
            "rate_limit": {"requests": 100, "per": "1s"},
        },
        "db": {"port": 5432, "protocol": "tcp", "versions": {"v1": {"instances": [{"host": "h4"}]}}},
        "g": {
            "port": 50051,
            "protocol": "grpc",
            "versions": {"v1": {"instances": [{"host": "h5"}]}},
            "health_check": {},
        },
        # A second caller of api, so that an authorization rule can leave it out; its v1 alone calls g.
        "spare": {
            "port": 8080,
            "versions": {"v1": {"instances": [{"host": "h6"}], "dependencies": [{"service": "g"}]}},
            "dependencies": ["api"],
        },
    },
    "external": {"ext": {"address": "api.example.com", "port": 443, "tls": True}},
    "gateways": {
        "gw": {
            "hosts": ["hg"],
            "rate_limit": {"requests": 500, "per": "1s"},
            "routes": [{"name": "front", "service": "spare", "rate_limit": {"requests": 100, "per": "1s"}}],
        }
    },
}


@dataclass(frozen=True)
class Probe:
    at: str  # dotted path into BASE; digits index lists
    value: Any
    expect: str | None  # what a new limitation line must say; None: any new line


def _probe(at: str, value: Any, expect: str | None = "") -> Probe:
    return Probe(at, value, str(value) if expect == "" else expect)


def _retries(field: str, at: str) -> dict[str, Probe]:
    probes = {
        "attempts": _probe(f"{at}.attempts", 5, "5 attempts"),
        "retry_on": _probe(f"{at}.retry_on", ["5xx", "envoy-ratelimited"], "envoy-ratelimited"),
        "on": _probe(f"{at}.on", ["5xx", "envoy-ratelimited"], "envoy-ratelimited"),
        "status_codes": _probe(f"{at}.status_codes", [409], "409"),
        "per_try_timeout": _probe(f"{at}.per_try_timeout", "300ms"),
        "backoff.base": _probe(f"{at}.backoff", {"base": "40ms"}, "40ms"),
        "backoff.max": _probe(f"{at}.backoff", {"base": "25ms", "max": "1s"}, "1s"),
        "methods": _probe(f"{at}.methods", "idempotent"),
        "another_host": _probe(f"{at}.another_host", False, "same instance"),
    }
    return {f"{field}.{name}": probe for name, probe in probes.items()}


def _breaker(field: str, at: str, grpc_at: str) -> dict[str, Probe]:
    probes = {
        # Limits App Mesh keeps for http nodes are probed on the grpc service, which loses them.
        "max_connections": _probe(f"{grpc_at}.max_connections", 100, "max_connections 100"),
        "max_pending_requests": _probe(f"{grpc_at}.max_pending_requests", 50, "max_pending_requests 50"),
        "max_requests": _probe(f"{at}.max_requests", 200, "max_requests 200"),
        "max_retries": _probe(f"{at}.max_retries", 7, "max_retries 7"),
        "consecutive_5xx": _probe(f"{at}.consecutive_5xx", 2, "consecutive_5xx 2"),
        "interval": _probe(f"{at}.interval", "5s", "interval 5s"),
        "ejection_time": _probe(f"{at}.ejection_time", "1m", "ejection_time 1m"),
        "max_ejection_percent": _probe(f"{at}.max_ejection_percent", 30, "max_ejection_percent 30"),
        "max_requests_per_connection": _probe(
            f"{at}.max_requests_per_connection", 10, "max_requests_per_connection 10"
        ),
        "panic_threshold": _probe(f"{at}.panic_threshold", 30, "panic_threshold 30%"),
    }
    return {f"{field}.{name}": probe for name, probe in probes.items()}


def _headers(field: str, at: str) -> dict[str, Probe]:
    return {
        f"{field}.exact": _probe(f"{at}.x-probe.exact", "yes", "x-probe=yes"),
        f"{field}.prefix": _probe(f"{at}.x-probe.prefix", "pre", "x-probe^=pre"),
        f"{field}.regex": _probe(f"{at}.x-probe.regex", "a|b", "x-probe~a|b"),
        f"{field}.present": _probe(f"{at}.x-probe.present", True, "x-probe present"),
    }


def _rate(field: str, at: str) -> dict[str, Probe]:
    return {
        f"{field}.requests": _probe(f"{at}.requests", 50, "50 requests"),
        f"{field}.per": _probe(f"{at}.per", "2s", "per 2s"),
        f"{field}.burst": _probe(f"{at}.burst", 300, "burst 300"),
    }


def _dependency(field: str, at: str, target: str) -> dict[str, Probe]:
    """A dependency's fields, each probed by replacing the list of dependencies at `at` with one."""
    return {
        f"{field}.service": _probe(at, [{"service": "web"}], "web"),
        f"{field}.local_port": _probe(at, [{"service": target, "local_port": 15433}], "15433"),
        f"{field}.address": _probe(at, [{"service": target, "address": "127.0.0.9"}], "127.0.0.9"),
        f"{field}.rate_limit.requests": _probe(at, [{"service": target, "rate_limit": RATE}], "50 requests"),
        f"{field}.rate_limit.per": _probe(at, [{"service": target, "rate_limit": RATE}], "per 2s"),
        f"{field}.rate_limit.burst": _probe(at, [{"service": target, "rate_limit": RATE}], "burst 300"),
    }


RATE = {"requests": 50, "per": "2s", "burst": 300}
GATEWAY = "gateways.gw"
GATEWAY_ROUTE = "gateways.gw.routes.0"
GATEWAY_CERT = {"port": 8443, "cert": "/probe/gw.pem", "key": "/probe/gw-key.pem"}
# Every host the catalog names, given addresses so that one of them can write a hosts file.
HOSTS = {name: {"address": f"10.0.0.{n}"} for n, name in enumerate(("h1", "h2", "h3", "h4", "h5", "h6", "hg"), 1)}
API = "services.api"
CLIENT_CERTIFICATE = {"cert": "/probe/c.pem", "key": "/probe/k.pem"}
ROUTE = "services.api.routes.0"
INSTANCE = "services.api.versions.v1.instances.0"

PROBES: dict[str, Probe] = {
    "mesh.name": _probe("mesh.name", "other"),
    "mesh.defaults.timeout": _probe("mesh.defaults.timeout", "1500ms"),
    "mesh.defaults.connect_timeout": _probe("mesh.defaults.connect_timeout", "2s", "connect_timeout 2s"),
    **_retries("mesh.defaults.retries", "mesh.defaults.retries"),
    **_breaker("mesh.defaults.circuit_breaker", "mesh.defaults.circuit_breaker", "mesh.defaults.circuit_breaker"),
    "mesh.tracing.provider": _probe("mesh.tracing.provider", "opentelemetry"),
    "mesh.tracing.collector": _probe("mesh.tracing.collector", "other.example:4318", "other.example:4318"),
    "mesh.tracing.sample_percent": _probe("mesh.tracing.sample_percent", 30, "30%"),
    "mesh.access_log.format": _probe("mesh.access_log.format", "text", "text log"),
    "mesh.access_log.path": _probe("mesh.access_log.path", "/var/log/access.log"),
    "mesh.sidecar.inbound_port": _probe("mesh.sidecar.inbound_port", 16000),
    "mesh.sidecar.outbound_port": _probe("mesh.sidecar.outbound_port", 16001),
    "mesh.sidecar.admin_port": _probe("mesh.sidecar.admin_port", 16002),
    "mesh.sidecar.stats_port": _probe("mesh.sidecar.stats_port", 16003),
    "mesh.metrics.prometheus": _probe("mesh.metrics.prometheus", "127.0.0.1:9091", "metrics"),
    "mesh.sidecar.max_downstream_connections": _probe("mesh.sidecar.max_downstream_connections", 1000),
    "services.*.port": _probe(f"{API}.port", 9090),
    "services.*.protocol": _probe(f"{API}.protocol", "http2"),
    "services.*.versions.*.image": _probe("services.api.versions.v1.image", "registry.example/api:9"),
    "services.*.versions.*.instances[].port": _probe(f"{INSTANCE}.port", 8081),
    "services.*.versions.*.instances[].inbound_port": _probe(f"{INSTANCE}.inbound_port", 15106),
    "services.*.versions.*.instances[].outbound_port": _probe(f"{INSTANCE}.outbound_port", 15101),
    "services.*.versions.*.instances[].admin_port": _probe(f"{INSTANCE}.admin_port", 15100),
    "services.*.versions.*.instances[].stats_port": _probe(f"{INSTANCE}.stats_port", 15190),
    "services.*.versions.*.instances[].env": _probe(f"{INSTANCE}.env", {"MODE": "probe"}),
    "services.*.versions.*.instances[].command": _probe(f"{INSTANCE}.command", ["./api-server"], "./api-server"),
    "services.*.versions.*.instances[].workdir": _probe(
        INSTANCE, {"host": "h2", "command": ["./api-server"], "workdir": "/srv/api"}, "/srv/api"
    ),
    "services.*.dependencies[].service": _probe("services.web.dependencies.0.service", "spare", "spare"),
    "services.*.dependencies[].local_port": _probe("services.web.dependencies.1.local_port", 15433),
    "services.*.dependencies[].address": _probe("services.web.dependencies.1.address", "127.0.0.9"),
    **_rate("services.*.dependencies[].rate_limit", "services.web.dependencies.0.rate_limit"),
    **_dependency("services.*.versions.*.dependencies[]", "services.spare.versions.v1.dependencies", "g"),
    "services.*.routes[].name": _probe(f"{ROUTE}.name", "primary"),
    "services.*.routes[].match.prefix": _probe(f"{ROUTE}.match.prefix", "/api", "prefix /api"),
    "services.*.routes[].match.path": _probe(f"{ROUTE}.match.path", "/exact", "path /exact"),
    **_headers("services.*.routes[].match.headers.*", f"{ROUTE}.match.headers"),
    "services.*.routes[].match.methods": _probe(f"{ROUTE}.match.methods", ["POST"], "methods POST"),
    "services.*.routes[].match.callers": _probe(f"{ROUTE}.match.from", ["web"], "web"),
    "services.*.routes[].to": _probe(f"{ROUTE}.to", {"v1": 30, "v2": 70}, "v2 70%"),
    "services.*.routes[].timeout": _probe(f"{ROUTE}.timeout", "1500ms"),
    **_retries("services.*.routes[].retries", f"{ROUTE}.retries"),
    "services.*.routes[].fault.delay.duration": _probe(f"{ROUTE}.fault.delay.duration", "2s", "delay 2s"),
    "services.*.routes[].fault.delay.percent": _probe(f"{ROUTE}.fault.delay.percent", 30, "delay 1s to 30%"),
    "services.*.routes[].fault.abort.status": _probe(f"{ROUTE}.fault.abort.status", 500, "abort 500"),
    "services.*.routes[].fault.abort.percent": _probe(f"{ROUTE}.fault.abort.percent", 30, "abort 503 to 30%"),
    **_headers("services.*.routes[].fault.headers.*", f"{ROUTE}.fault.headers"),
    "services.*.routes[].mirror.to": _probe(f"{ROUTE}.mirror.to", "v1", "to v1"),
    "services.*.routes[].mirror.percent": _probe(f"{ROUTE}.mirror.percent", 30, "30% to v2"),
    "services.*.timeout": _probe(f"{API}.timeout", "1500ms"),
    "services.*.connect_timeout": _probe(f"{API}.connect_timeout", "2s", "connect_timeout 2s"),
    **_retries("services.*.retries", f"{API}.retries"),
    **_breaker("services.*.circuit_breaker", f"{API}.circuit_breaker", "services.g.circuit_breaker"),
    "services.*.health_check.path": _probe(f"{API}.health_check.path", "/ready", "path /ready"),
    "services.*.health_check.grpc_service": _probe("services.g.health_check.grpc_service", "probe.Health"),
    "services.*.health_check.send": _probe("services.db.health_check", {"send": "PING", "expect": "PONG"}, "'PING'"),
    "services.*.health_check.expect": _probe("services.db.health_check", {"send": "PING", "expect": "PONG"}, "'PONG'"),
    "services.*.health_check.interval": _probe(f"{API}.health_check.interval", "7s", "every 7s"),
    "services.*.health_check.timeout": _probe(f"{API}.health_check.timeout", "3s", "timeout 3s"),
    "services.*.health_check.unhealthy_threshold": _probe(f"{API}.health_check.unhealthy_threshold", 4, "after 4"),
    "services.*.health_check.healthy_threshold": _probe(f"{API}.health_check.healthy_threshold", 5, "after 5"),
    **_rate("services.*.rate_limit", f"{API}.rate_limit"),
    "external.*.address": _probe("external.ext.address", "other.example"),
    "external.*.port": _probe("external.ext.port", 8443, ":8443"),
    "external.*.protocol": _probe("external.ext.protocol", "tcp", "(tcp)"),
    "external.*.tls": _probe("external.ext.tls", False, None),
    "external.*.sni": _probe("external.ext.sni", "sni.example", "SNI sni.example"),
    "external.*.ca_file": _probe("external.ext.ca_file", "/etc/probe/ca.pem"),
    "external.*.hosts": _probe("external.ext.hosts", ["www.probe.example"], "www.probe.example"),
    "external.*.timeout": _probe("external.ext.timeout", "1500ms", "timeout 1500ms"),
    "external.*.connect_timeout": _probe("external.ext.connect_timeout", "2s", "connect_timeout 2s"),
    **_retries("external.*.retries", "external.ext.retries"),
    **_breaker("external.*.circuit_breaker", "external.ext.circuit_breaker", "external.ext.circuit_breaker"),
    "external.*.client_certificate.cert": _probe("external.ext.client_certificate", CLIENT_CERTIFICATE, "/probe/c.pem"),
    "external.*.client_certificate.key": _probe("external.ext.client_certificate", CLIENT_CERTIFICATE, "/probe/k.pem"),
    "mesh.security.mtls": _probe("mesh.security.mtls", "permissive"),
    "mesh.security.trust_domain": _probe("mesh.security.trust_domain", "probe.example"),
    "mesh.security.ca.cert": _probe(
        "mesh.security.ca", {"cert": "probe-ca.pem", "key": "probe-key.pem"}, "probe-ca.pem"
    ),
    "mesh.security.ca.key": _probe(
        "mesh.security.ca", {"cert": "probe-ca.pem", "key": "probe-key.pem"}, "probe-ca.pem"
    ),
    "mesh.security.leaf_lifetime": _probe("mesh.security.leaf_lifetime", "48h"),
    "mesh.security.ca_lifetime": _probe("mesh.security.ca_lifetime", "1000h"),
    # Rules only narrow what the catalog derives (web may call api): each probe narrows it.
    "services.*.authorization[].callers": _probe(f"{API}.authorization", [{"from": ["web"]}], "admits only web"),
    "services.*.authorization[].clients": _probe(
        f"{API}.authorization", [{"from": ["web"]}, {"clients": ["probe-client"]}], "client probe-client"
    ),
    "services.*.authorization[].outside": _probe(
        "services.web.authorization", [{"outside": True, "methods": ["GET"]}], "callers from outside the mesh (GET"
    ),
    "services.*.authorization[].methods": _probe(
        f"{API}.authorization", [{"from": ["web"], "methods": ["GET"]}], "GET"
    ),
    "services.*.authorization[].paths": _probe(f"{API}.authorization", [{"from": ["web"], "paths": ["/v1/"]}], "/v1/"),
    "hosts.*.hosts_file": _probe("hosts", {**HOSTS, "h1": {"address": "10.0.0.1", "hosts_file": True}}, "host h1"),
    "gateways.*.hosts": _probe(f"{GATEWAY}.hosts", ["hg", "hg2"], "hg, hg2"),
    "gateways.*.port": _probe(f"{GATEWAY}.port", 8090, "HTTP on 8090"),
    "gateways.*.admin_port": _probe(f"{GATEWAY}.admin_port", 15300, "admin 15300"),
    "gateways.*.stats_port": _probe(f"{GATEWAY}.stats_port", 15390, "stats 15390"),
    **_rate("gateways.*.rate_limit", f"{GATEWAY}.rate_limit"),
    "gateways.*.tls.port": _probe(f"{GATEWAY}.tls", {"port": 8443}, "HTTPS on 8443"),
    "gateways.*.tls.cert": _probe(f"{GATEWAY}.tls", GATEWAY_CERT, "/probe/gw.pem"),
    "gateways.*.tls.key": _probe(f"{GATEWAY}.tls", GATEWAY_CERT, "/probe/gw-key.pem"),
    "gateways.*.routes[].name": _probe(f"{GATEWAY_ROUTE}.name", "shop", "route shop"),
    "gateways.*.routes[].domains": _probe(f"{GATEWAY_ROUTE}.domains", ["shop.example"], "Host shop.example"),
    "gateways.*.routes[].match.prefix": _probe(f"{GATEWAY_ROUTE}.match.prefix", "/shop", "prefix /shop"),
    "gateways.*.routes[].match.path": _probe(f"{GATEWAY_ROUTE}.match.path", "/exact", "path /exact"),
    "gateways.*.routes[].match.methods": _probe(f"{GATEWAY_ROUTE}.match.methods", ["POST"], "methods POST"),
    **_headers("gateways.*.routes[].match.headers.*", f"{GATEWAY_ROUTE}.match.headers"),
    "gateways.*.routes[].service": _probe(f"{GATEWAY_ROUTE}.service", "web", "-> web"),
    **_rate("gateways.*.routes[].rate_limit", f"{GATEWAY_ROUTE}.rate_limit"),
}


def test_every_field_some_flavor_uses_has_a_probe() -> None:
    used = {path for path in catalog_fields() if any(not isinstance(FIELDS[f][path], Moot) for f in FLAVORS)}
    assert sorted(used - set(PROBES)) == [], "add a probe: a value other than the default, and what a line must say"
    assert sorted(set(PROBES) - used) == []


def _set(data: dict[str, Any], at: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = at.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@dataclass(frozen=True)
class Rendered:
    files: dict[str, str]
    warnings: list[str]


@functools.cache
def _render(text: str, flavor: str, directory: Path) -> Rendered:
    path = directory / f"catalog-{abs(hash(text))}.yaml"
    path.write_text(text)
    root = render_aws(load_mesh(path), directory / "out", AwsOptions(flavor=flavor, default_image="demo:1"))
    return Rendered(root.files, root.warnings)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fidelity")


CASES = [(flavor, path) for path in sorted(PROBES) for flavor in FLAVORS if not isinstance(FIELDS[flavor][path], Moot)]


@pytest.mark.parametrize(("flavor", "path"), CASES, ids=[f"{f}:{p}" for f, p in CASES])
def test_each_field_is_carried_or_listed_as_lost(flavor: str, path: str, scratch: Path) -> None:
    probe = PROBES[path]
    base = _render(yaml.safe_dump(BASE), flavor, scratch)
    changed = _render(yaml.safe_dump(_set(BASE, probe.at, probe.value)), flavor, scratch)
    fate = FIELDS[flavor][path]
    if isinstance(fate, Carried):
        assert changed.files != base.files, f"{path} is declared carried ({fate.how}) but changes nothing"
    else:
        new = [line for line in changed.warnings if line not in base.warnings]
        assert new, f"{path} is declared lost ({fate}) but {probe.at}={probe.value!r} adds no limitation line"
        if probe.expect is not None:
            assert any(probe.expect in line for line in new), f"no new line names {probe.expect!r}: {new}"


# -- the lines themselves ---------------------------------------------------------------------------


def _warnings(tmp_path: Path, text: str, flavor: str, tracing: str = "xray") -> list[str]:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    options = AwsOptions(flavor=flavor, tracing=tracing, default_image="demo:1")
    return render_aws(load_mesh(path), tmp_path / "out", options).warnings


ISSUE_13 = """
mesh: {name: m}
services:
  a: {port: 8080, versions: {v1: {instances: [a-1]}}, dependencies: [b]}
  b:
    port: 8080
    versions: {v1: {instances: [b-1]}}
    connect_timeout: 250ms
    retries: {attempts: 3, methods: all, backoff: {base: 50ms, max: 1s}}
    circuit_breaker: {max_retries: 10, max_requests: 100}
"""


def test_app_mesh_lists_backoff_connect_timeout_max_retries_and_max_requests(tmp_path: Path) -> None:
    warnings = _warnings(tmp_path, ISSUE_13, "app-mesh")
    assert "b/default: retry back-off 50ms to 1s not carried; App Mesh's Envoy backs off 25ms to 250ms" in warnings
    assert "b: no connect_timeout 250ms; App Mesh has no such setting" in warnings
    assert (
        "b: circuit breaker max_requests 100, max_retries 10 not carried; "
        "App Mesh's http virtual nodes limit only max_connections and max_pending_requests"
    ) in warnings


def test_lines_only_for_what_a_catalog_changes(tmp_path: Path) -> None:
    """Besides what the catalog sets, the defaults that are meshgen behaviour a flavor drops are
    listed: its access log, and strict mutual TLS with derived authorization (the default mode)."""
    minimal = (REPO / "examples/minimal/catalog.yaml").read_text()
    assert _warnings(tmp_path, minimal, "ecs-envoy") == [
        "certificates: valid 24h (leaf_lifetime) and read by a task once, at start; nothing renews a running "
        "task's: run `meshgen aws certs rotate` at least every 12h (e.g. from a scheduler), which issues new ones "
        "and replaces every task, or tasks are refused by the mesh once theirs expired",
    ]
    assert _warnings(tmp_path, minimal, "service-connect") == [
        "client: calls are not limited to its dependencies (echo); every task may call every service of the namespace",
        "access logs: Service Connect's own format, not meshgen's json log to /dev/stdout",
        "mutual TLS strict: one-way TLS between Service Connect proxies instead, with certificates AWS Private CA "
        "issues and ECS rotates (valid at most 7 days in short-lived mode), not X.509-SVIDs for "
        "spiffe://minimal/service/<name> valid 24h: callers present no certificate",
        "client: authorization not enforced: one-way TLS carries no caller identity, so every task of the namespace "
        "may call it; the catalog admits only callers from outside the mesh",
        "echo: authorization not enforced: one-way TLS carries no caller identity, so every task of the namespace "
        "may call it; the catalog admits only client",
    ]
    assert _warnings(tmp_path, minimal, "app-mesh")[1:] == [
        "access logs: none configured on the virtual nodes; not meshgen's json log to /dev/stdout",
        "mutual TLS strict: not carried: App Mesh's Envoys read certificates from files or an SDS agent in each "
        "task, and this flavor builds no tasks; virtual nodes talk plaintext, without identities",
        "client: authorization not enforced: without mutual TLS callers have no identity, so whatever reaches its "
        "tasks may call it; the catalog admits only callers from outside the mesh",
        "echo: authorization not enforced: without mutual TLS callers have no identity, so whatever reaches its "
        "tasks may call it; the catalog admits only client",
        "tasks: this flavor builds the mesh, not the tasks: run each version's tasks (image, instances, environment) "
        "with the Envoy environment of output envoy_environment",
    ]
    plaintext = minimal.replace("  name: minimal\n", '  name: minimal\n  security: {mtls: "off"}\n')
    assert _warnings(tmp_path, plaintext, "ecs-envoy") == []
    assert len(_warnings(tmp_path, plaintext, "service-connect")) == 2
    assert len(_warnings(tmp_path, plaintext, "app-mesh")) == 3


TWO_INSTANCES = """
mesh: {name: m, tracing: {collector: "collector.example:9411"}, security: {mtls: "off"}}
services:
  a:
    port: 8080
    versions:
      v1:
        instances:
          - {host: a-1}
          - {host: a-2, port: 8081, command: [./a-server]}
"""


def test_ecs_lists_what_one_task_definition_per_version_cannot_say(tmp_path: Path) -> None:
    warnings = _warnings(tmp_path, TWO_INSTANCES, "ecs-envoy", tracing="none")
    assert warnings == [
        "a v1: one port for the whole version, the first instance's (8080); a.v1.a-2 has 8081",
        "a v1: command `./a-server` of a.v1.a-2 is not run; ECS runs the image's own command (--default-image)",
        "tracing: off (--tracing none); the catalog's zipkin tracing to collector.example:9411 (100% sampled) "
        "is not rendered",
    ]
    assert _warnings(tmp_path, TWO_INSTANCES, "ecs-envoy", tracing="otel")[-1].startswith("a v1: command")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_tcp_routes_inherit_no_retry_lines(tmp_path: Path, flavor: str) -> None:
    """examples/tcp retries by mesh default: its HTTP route's policy is listed, never the TCP route's."""
    warnings = _warnings(tmp_path, (REPO / "examples/tcp/catalog.yaml").read_text(), flavor)
    assert not [w for w in warnings if w.startswith("db/") and ("retr" in w or "per-try" in w)]
    if flavor != "ecs-envoy":
        assert any(w.startswith("api/default: ") for w in warnings)
