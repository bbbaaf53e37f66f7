"""What is deployed on AWS, read with boto3, against what the catalog says should be.

Names follow the modules: the ECS cluster is named after the mesh, each service version is an
ECS service, task family and Cloud Map service named `<service>-<version>`; App Mesh virtual
nodes are `<service>-<version>` and virtual services `<service>.<namespace>`; with mutual TLS,
each service's identity secret is `meshgen/<mesh>/identity/<service>` (its value is never read here).
"""

from __future__ import annotations

import base64
import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from meshgen.deploy.aws.identities import CURRENT, SECRET_KEYS, secret_name
from meshgen.model.mesh import Mesh
from meshgen.render.terraform.ecs import task_envoy_configs
from meshgen.render.terraform.flavors import app_mesh_data, ecs_envoy_services, service_connect_services


@dataclass(frozen=True)
class Drift:
    resource: str
    field: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.field}: expected {self.expected}, deployed {self.actual}"


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ecs_services(ecs: Any, cluster: str) -> dict[str, dict[str, Any]]:
    arns: list[str] = []
    for page in ecs.get_paginator("list_services").paginate(cluster=cluster):
        arns += page["serviceArns"]
    services = {}
    for chunk in _chunks(arns, 10):
        for service in ecs.describe_services(cluster=cluster, services=chunk)["services"]:
            if service.get("status") != "INACTIVE":
                services[service["serviceName"]] = service
    return services


def _container(task: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in task.get("containerDefinitions", []) if c["name"] == name), None)


def _environment(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def _config_difference(expected: str, actual: str) -> str:
    changed = [
        line
        for line in difflib.unified_diff(actual.splitlines(), expected.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return f"{len(changed)} lines differ, first: {changed[0].strip()[:100]}" if changed else "identical"


def _app_drift(key: str, spec: dict[str, Any], task: dict[str, Any]) -> list[Drift]:
    resource = f"task definition {key}"
    app = _container(task, "app")
    if app is None:
        return [Drift(resource, "container app", "present", "missing")]
    drifts = []
    if "image" in spec and app.get("image") != spec["image"]:
        drifts.append(Drift(resource, "app image", spec["image"], str(app.get("image"))))
    ports = sorted(m["containerPort"] for m in app.get("portMappings", []))
    if spec["port"] not in ports:
        drifts.append(Drift(resource, "app port", str(spec["port"]), str(ports)))
    environment = _environment(app)
    for name, value in sorted(spec["environment"].items()):
        if environment.get(name) != value:
            drifts.append(Drift(resource, f"app environment {name}", value, str(environment.get(name))))
    return drifts


def _envoy_drift(key: str, config: str, task: dict[str, Any]) -> list[Drift]:
    resource = f"task definition {key}"
    envoy = _container(task, "envoy")
    if envoy is None:
        return [Drift(resource, "container envoy", "present", "missing")]
    encoded = _environment(envoy).get("ENVOY_CONFIG_B64", "")
    deployed = base64.b64decode(encoded).decode("utf-8", errors="replace") if encoded else ""
    if deployed != config:
        return [
            Drift(
                resource, "envoy config", "the config rendered from the catalog", _config_difference(config, deployed)
            )
        ]
    return []


def _envoy_tls_drift(key: str, spec: dict[str, Any], task: dict[str, Any], secrets: dict[str, str]) -> list[Drift]:
    """The Envoy container gets the service's identity secret, by ARN and JSON key, and its command
    writes the files the config names; without mutual TLS it gets no secret."""
    resource = f"task definition {key}"
    envoy = _container(task, "envoy") or {}
    deployed = sorted(s.get("valueFrom", "") for s in envoy.get("secrets", []))
    arn = secrets.get(spec["service"])
    expected = sorted(f"{arn}:{k}::" for k in SECRET_KEYS) if "tls" in spec and arn else []
    drifts = []
    if "tls" in spec and arn is None:
        return []  # the missing secret is reported on its own
    if deployed != expected:
        drifts.append(Drift(resource, "envoy secrets", str(expected), str(deployed)))
    command = " ".join(envoy.get("command", []))
    for file in sorted(spec.get("tls", {}).values()):
        if file not in command:
            drifts.append(Drift(resource, "envoy command", f"writes {file}", "does not"))
    return drifts


def _identity_drift(mesh: Mesh, client: Any) -> tuple[dict[str, str], list[Drift]]:
    """Each service's identity secret (with mutual TLS): it exists and holds a certificate; no
    secret of a service the catalog does not have. Returns the ARNs found, by service."""
    expected = {secret_name(mesh.name, s.name): s.name for s in mesh.services} if mesh.security.enabled else {}
    prefix = secret_name(mesh.name, "")
    found: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [prefix]}]):
        found |= {s["Name"]: s for s in page["SecretList"] if s["Name"].startswith(prefix) and not s.get("DeletedDate")}
    arns: dict[str, str] = {}
    drifts: list[Drift] = []
    for name, service in sorted(expected.items()):
        secret = found.get(name)
        if secret is None:
            drifts.append(Drift(f"identity secret {name}", "exists", "yes", "missing"))
            continue
        arns[service] = secret["ARN"]
        if not any(CURRENT in stages for stages in secret.get("SecretVersionsToStages", {}).values()):
            drifts.append(Drift(f"identity secret {name}", "certificate", "pushed (meshgen aws certs push)", "none"))
    drifts += [
        Drift(f"identity secret {name}", "exists", "no (not in the catalog)", "yes")
        for name in sorted(set(found) - set(expected))
    ]
    return arns, drifts


def _service_connect_drift(key: str, spec: dict[str, Any], service: dict[str, Any]) -> list[Drift]:
    resource = f"ECS service {key}"
    deployments = service.get("deployments") or [{}]
    connect = deployments[0].get("serviceConnectConfiguration") or {}
    if not connect.get("enabled"):
        return [Drift(resource, "service connect", "enabled", "disabled")]
    wanted = spec["service_connect"]
    entries = connect.get("services", [])
    names = sorted(e.get("discoveryName", "") for e in entries)
    expected = [wanted["discovery_name"]] if wanted.get("discovery_name") else []
    drifts = []
    if names != expected:
        drifts.append(Drift(resource, "service connect discovery names", str(expected), str(names)))
    aliases = sorted((a["dnsName"], a["port"]) for e in entries for a in e.get("clientAliases", []))
    wanted_aliases = sorted((a["dns_name"], a["port"]) for a in wanted.get("client_aliases", []))
    if aliases != wanted_aliases:
        drifts.append(Drift(resource, "service connect client aliases", str(wanted_aliases), str(aliases)))
    return drifts


def ecs_drift(mesh: Mesh, flavor: str, namespace: str, session: Any, tracing: str = "xray") -> list[Drift]:
    ecs = session.client("ecs")
    cluster = mesh.name
    clusters = ecs.describe_clusters(clusters=[cluster])["clusters"]
    if not clusters or clusters[0].get("status") != "ACTIVE":
        return [Drift(f"ECS cluster {cluster}", "exists", "ACTIVE", clusters[0]["status"] if clusters else "missing")]
    expected = ecs_envoy_services(mesh) if flavor == "ecs-envoy" else service_connect_services(mesh)
    configs = task_envoy_configs(mesh, namespace, tracing) if flavor == "ecs-envoy" else {}
    deployed = _ecs_services(ecs, cluster)
    drifts: list[Drift] = []
    secrets: dict[str, str] = {}
    if flavor == "ecs-envoy":
        secrets, drifts = _identity_drift(mesh, session.client("secretsmanager"))
    for key, spec in sorted(expected.items()):
        service = deployed.get(key)
        if service is None:
            drifts.append(Drift(f"ECS service {key}", "exists", "yes", "missing"))
            continue
        if service["desiredCount"] != spec["desired_count"]:
            drifts.append(
                Drift(f"ECS service {key}", "desired count", str(spec["desired_count"]), str(service["desiredCount"]))
            )
        task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        drifts += _app_drift(key, spec, task)
        if flavor == "ecs-envoy":
            drifts += _envoy_drift(key, configs[key], task)
            drifts += _envoy_tls_drift(key, spec, task, secrets)
        else:
            drifts += _service_connect_drift(key, spec, service)
    for extra in sorted(set(deployed) - set(expected)):
        drifts.append(Drift(f"ECS service {extra}", "exists", "no (not in the catalog)", "yes"))
    if flavor == "ecs-envoy":
        drifts += _cloud_map_drift(session.client("servicediscovery"), namespace, set(expected))
    return drifts


def _cloud_map_drift(discovery: Any, namespace: str, expected: set[str]) -> list[Drift]:
    namespaces = []
    for page in discovery.get_paginator("list_namespaces").paginate():
        namespaces += [n for n in page["Namespaces"] if n["Name"] == namespace]
    if not namespaces:
        return [Drift(f"Cloud Map namespace {namespace}", "exists", "yes", "missing")]
    namespace_id = namespaces[0]["Id"]
    names: set[str] = set()
    filters = [{"Name": "NAMESPACE_ID", "Values": [namespace_id], "Condition": "EQ"}]
    for page in discovery.get_paginator("list_services").paginate(Filters=filters):
        names |= {s["Name"] for s in page["Services"]}
    drifts = [Drift(f"Cloud Map service {n}.{namespace}", "exists", "yes", "missing") for n in sorted(expected - names)]
    drifts += [
        Drift(f"Cloud Map service {n}.{namespace}", "exists", "no (not in the catalog)", "yes")
        for n in sorted(names - expected)
    ]
    return drifts


def _route_view(route: dict[str, Any]) -> dict[str, Any]:
    """The parts of an App Mesh route spec meshgen sets, in the shape of app_mesh_data()."""
    spec = route["spec"]
    body = next(spec[k] for k in ("httpRoute", "http2Route", "grpcRoute", "tcpRoute") if k in spec)
    targets = sorted((t["virtualNode"], t["weight"]) for t in body["action"]["weightedTargets"])
    view: dict[str, Any] = {"targets": targets, "priority": spec.get("priority")}
    match = body.get("match", {})
    if "prefix" in match:
        view["prefix"] = match["prefix"]
    retry = body.get("retryPolicy")
    if retry:
        view["max_retries"] = retry["maxRetries"]
    return view


def _expected_route(route: dict[str, Any], priority: int) -> dict[str, Any]:
    view: dict[str, Any] = {
        "targets": sorted((t["virtual_node"], t["weight"]) for t in route["targets"]),
        "priority": priority,
    }
    if "prefix" in route:
        view["prefix"] = route["prefix"]
    if "retry" in route:
        view["max_retries"] = route["retry"]["max_retries"]
    return view


def _not_found(error: ClientError) -> bool:
    # AWS answers NotFoundException; emulators such as moto name the missing thing (MeshNotFound).
    return str(error.response.get("Error", {}).get("Code", "")).endswith(("NotFound", "NotFoundException"))


def app_mesh_drift(mesh: Mesh, namespace: str, session: Any) -> list[Drift]:
    appmesh = session.client("appmesh")
    name = mesh.name
    try:
        appmesh.describe_mesh(meshName=name)
    except ClientError as exc:
        if not _not_found(exc):
            raise
        return [Drift(f"App Mesh {name}", "exists", "yes", "missing")]
    expected = app_mesh_data(mesh, namespace)
    drifts = []
    nodes = {n["virtualNodeName"] for n in appmesh.list_virtual_nodes(meshName=name)["virtualNodes"]}
    for node, spec in sorted(expected["virtual_nodes"].items()):
        if node not in nodes:
            drifts.append(Drift(f"virtual node {node}", "exists", "yes", "missing"))
            continue
        deployed = appmesh.describe_virtual_node(meshName=name, virtualNodeName=node)["virtualNode"]["spec"]
        backends = sorted(b["virtualService"]["virtualServiceName"] for b in deployed.get("backends", []))
        if backends != spec["backends"]:
            drifts.append(Drift(f"virtual node {node}", "backends", str(spec["backends"]), str(backends)))
        ports = [listener["portMapping"]["port"] for listener in deployed.get("listeners", [])]
        if ports != [spec["port"]]:
            drifts.append(Drift(f"virtual node {node}", "listener port", str(spec["port"]), str(ports)))
    drifts += [
        Drift(f"virtual node {n}", "exists", "no (not in the catalog)", "yes")
        for n in sorted(nodes - set(expected["virtual_nodes"]))
    ]
    for router, spec in sorted(expected["virtual_services"].items()):
        try:
            listed = appmesh.list_routes(meshName=name, virtualRouterName=router)["routes"]
        except ClientError as exc:
            if not _not_found(exc):
                raise
            drifts.append(Drift(f"virtual router {router}", "exists", "yes", "missing"))
            continue
        deployed_routes = {r["routeName"] for r in listed}
        for priority, route in enumerate(spec["routes"]):
            resource = f"route {router}/{route['name']}"
            if route["name"] not in deployed_routes:
                drifts.append(Drift(resource, "exists", "yes", "missing"))
                continue
            described = appmesh.describe_route(meshName=name, virtualRouterName=router, routeName=route["name"])
            actual, wanted = _route_view(described["route"]), _expected_route(route, priority)
            for key in sorted(set(actual) | set(wanted)):
                if actual.get(key) != wanted.get(key):
                    drifts.append(Drift(resource, key, str(wanted.get(key)), str(actual.get(key))))
    return drifts
