"""What a local mesh runs: one process per app, per sidecar and the trace collector, each with
the command, environment and address it needs. A change of either means the process restarts."""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from meshgen.errors import CatalogError, InputError
from meshgen.model import Mesh
from meshgen.model.addresses import instance_environment
from meshgen.model.mesh import Instance
from meshgen.render.envoy.names import BOOTSTRAP_FILE

# A restarted Envoy's predecessor drains for DRAIN_SECONDS, then exits at PARENT_SHUTDOWN_SECONDS.
DRAIN_SECONDS = 2
PARENT_SHUTDOWN_SECONDS = 3


@dataclass(frozen=True)
class Spec:
    """A process the mesh should have running."""

    name: str
    kind: str
    argv: list[str]
    env: dict[str, str]
    ready_address: tuple[str, int] | None  # None: a process that serves nothing
    instance: str | None = None
    admin: tuple[str, int] | None = None
    # Start before higher ones, ready first: sidecars of callees before their callers', so a
    # caller's first health check finds its callee listening (not how it restarts: no fingerprint).
    wave: int = 0
    workdir: str | None = None  # None: the state directory's

    @property
    def fingerprint(self) -> str:
        identity = [self.argv, sorted(self.env.items())] + ([self.workdir] if self.workdir else [])
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def localize_externals(mesh: Mesh, overrides: dict[str, tuple[str, int]]) -> tuple[Mesh, list[str]]:
    """A local mesh never sends traffic off this machine, not even a DNS query: externals go to
    the loopback stand-ins given in `overrides`, or have no endpoints (calls answer 503)."""
    unknown = sorted(set(overrides) - {e.name for e in mesh.externals})
    if unknown:
        raise InputError(f"--external names no external service of the catalog: {', '.join(unknown)}")
    notes = []
    externals = []
    for external in mesh.externals:
        if external.name in overrides:
            address, port = overrides[external.name]
            if not _is_loopback(address):
                raise InputError(f"--external {external.name}: {address} is not a loopback address")
            externals.append(dataclasses.replace(external, stand_in=(address, port)))
            notes.append(f"external {external.name}: served by the stand-in at {address}:{port}")
        elif _is_loopback(external.address):
            externals.append(external)
        else:
            externals.append(dataclasses.replace(external, reachable=False))
            notes.append(
                f"external {external.name} ({external.address}) is off this machine: calls to it answer 503; "
                f"point it at a local stand-in with --external {external.name}=127.0.0.1:PORT"
            )
    return dataclasses.replace(mesh, externals=tuple(externals)), notes


def localize_paths(mesh: Mesh, catalog: Path) -> Mesh:
    """Files the catalog names for a gateway, relative to the catalog's directory: Envoy, started
    elsewhere, needs them absolute."""
    origin = catalog.resolve()
    base = origin if origin.is_dir() else origin.parent
    gateways = tuple(
        dataclasses.replace(g, tls_cert=str(base / g.tls_cert), tls_key=str(base / g.tls_key))
        if g.tls_cert is not None and g.tls_key is not None
        else g
        for g in mesh.gateways
    )
    return dataclasses.replace(mesh, gateways=gateways)


def local_limitations(mesh: Mesh) -> list[str]:
    """What the catalog asks for that a local mesh does not do, for the person at the terminal."""
    return [
        f"host {host.name}: hosts_file is for on-prem hosts; a local mesh leaves /etc/hosts alone (apps find "
        "their dependencies through the <NAME>_SERVICE_HOST, _PORT and _URL variables)"
        for host in mesh.hosts
        if host.hosts_file
    ]


def check_runs_locally(mesh: Mesh) -> None:
    problem = mesh.sources.problem
    problems = [
        problem(
            ("hosts", host.name, "address"), f"host {host.name} has address {host.address}, which is not on loopback"
        )
        for host in mesh.hosts
        if not ipaddress.ip_address(host.address).is_loopback
    ]
    if mesh.tracing is not None:
        if mesh.tracing.provider != "zipkin":
            problems.append(
                problem(
                    ("mesh", "tracing", "provider"),
                    "tracing provider opentelemetry: the local collector speaks Zipkin; use provider zipkin",
                )
            )
        elif not (mesh.tracing.collector_is_ip and ipaddress.ip_address(mesh.tracing.collector_address).is_loopback):
            problems.append(
                problem(
                    ("mesh", "tracing", "collector"),
                    f"tracing collector {mesh.tracing.collector_address} is not a loopback address",
                )
            )
    metrics = mesh.metrics
    if metrics is not None and not (metrics.prometheus_is_ip and _is_loopback(metrics.prometheus_address)):
        problems.append(
            problem(
                ("mesh", "metrics", "prometheus"),
                f"Prometheus address {metrics.prometheus_address} is not a loopback address",
            )
        )
    for service in mesh.services:
        if service.protocol not in ("http2", "grpc"):
            continue
        for version in service.versions:
            for index, instance in enumerate(version.instances):
                if instance.command is None:
                    problems.append(
                        problem(
                            ("services", service.name, "versions", version.name, "instances", index),
                            f"{instance.id}: the built-in demo app speaks HTTP/1.1 and TCP; give protocol "
                            f"{service.protocol} instances a `command`",
                        )
                    )
    if problems:
        raise CatalogError(problems, heading="this catalog cannot run on this machine")


def _app_spec(mesh: Mesh, instance: Instance) -> Spec:
    host = instance.host
    env = instance_environment(mesh, instance)
    argv = list(instance.command) if instance.command else [sys.executable, "-m", "meshgen.apps.demo"]
    workdir = None
    if instance.workdir is not None:
        origin = Path(mesh.origin or ".").resolve()
        workdir = str((origin if origin.is_dir() else origin.parent) / instance.workdir)
    return Spec(
        f"{instance.id} app", "app", argv, env, (host.local_address, instance.app_port), instance.id, workdir=workdir
    )


def _envoy_spec(envoy: str, instance: Instance, config_dir: Path, files: dict[str, str]) -> Spec:
    bootstrap = files[f"{instance.id}/{BOOTSTRAP_FILE}"]
    argv = [
        envoy,
        "-c",
        str(config_dir / instance.id / BOOTSTRAP_FILE),
        "--concurrency",  # many sidecars share this machine: one worker each
        "1",
        "--log-level",
        "warn",
        "--file-flush-interval-msec",  # access log lines show up within a second, not ten
        "1000",
        "--drain-time-s",
        str(DRAIN_SECONDS),
        "--parent-shutdown-time-s",
        str(PARENT_SHUTDOWN_SECONDS),
    ]
    # The bootstrap's content, not its path, decides whether a running Envoy must restart.
    env = {"MESHGEN_BOOTSTRAP_SHA": hashlib.sha256(bootstrap.encode()).hexdigest()[:16]}
    host = instance.host
    return Spec(
        f"{instance.id} envoy",
        "envoy",
        argv,
        env,
        (host.address, instance.inbound_port),
        instance.id,
        admin=(host.local_address, instance.admin_port),
    )


def _collector_spec(mesh: Mesh) -> Spec | None:
    if mesh.tracing is None:
        return None
    address = (mesh.tracing.collector_address, mesh.tracing.collector_port)
    env = {"MESHGEN_LISTEN": f"{address[0]}:{address[1]}"}
    return Spec("collector", "collector", [sys.executable, "-m", "meshgen.apps.collector"], env, address)


def _renewer_spec(mesh: Mesh, state_dir: Path) -> Spec | None:
    if not mesh.security.enabled:
        return None
    argv = [sys.executable, "-m", "meshgen.deploy.local.renewer", str(state_dir.resolve())]
    return Spec("certificate renewer", "renewer", argv, {}, None)


def _dashboard_spec(mesh: Mesh, state_dir: Path) -> Spec | None:
    """`meshgen dashboard` on the catalog's address, started last: it reads the state up wrote."""
    dashboard = mesh.dashboard
    if dashboard is None:
        return None
    argv = [sys.executable, "-m", "meshgen", "dashboard", "--state-dir", str(state_dir.resolve())]
    argv += ["--address", dashboard.address, "--port", str(dashboard.port)]
    return Spec("dashboard", "dashboard", argv, {}, (dashboard.address, dashboard.port))


def call_depths(mesh: Mesh) -> dict[str, int]:
    """0 for a service that calls no other service, else one more than the deepest it calls; a
    service in a cycle counts what it calls outside the cycle only."""
    depths: dict[str, int] = {}

    def depth(name: str, visiting: frozenset[str]) -> int:
        if name in depths:
            return depths[name]
        below = [
            depth(d.target, visiting | {name})
            for d in mesh.service(name).dependencies
            if not d.external and d.target not in visiting | {name}
        ]
        found = 1 + max(below) if below else 0
        depths[name] = found
        return found

    for service in mesh.services:
        depth(service.name, frozenset())
    return depths


def plan(mesh: Mesh, envoy: str, config_dir: Path, files: dict[str, str], state_dir: Path) -> list[Spec]:
    """Processes in start order: the collector, Prometheus, the certificate renewer, every app, then
    every sidecar, callees' before their callers', the gateways, and the dashboard."""
    from meshgen.deploy.local.prometheus import spec as prometheus_spec  # it builds on Spec, above

    specs = [
        s
        for s in (_collector_spec(mesh), prometheus_spec(mesh, state_dir), _renewer_spec(mesh, state_dir))
        if s is not None
    ]
    specs += [_app_spec(mesh, i) for i in mesh.instances]
    depths = call_depths(mesh)
    specs += [
        dataclasses.replace(_envoy_spec(envoy, i, config_dir, files), wave=depths[i.service]) for i in mesh.instances
    ]
    # Gateways last: every service they route to is up when they take their first request.
    last = max(depths.values(), default=0) + 1
    gateways = [i for g in mesh.gateways for i in g.instances]
    specs += [dataclasses.replace(_envoy_spec(envoy, i, config_dir, files), wave=last) for i in gateways]
    dashboard = _dashboard_spec(mesh, state_dir)
    return specs if dashboard is None else [*specs, dashboard]
