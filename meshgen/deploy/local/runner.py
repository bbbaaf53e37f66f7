"""`meshgen up`, `status` and `down`: a whole mesh as processes on this machine.

Every host is a loopback address, so every instance's app and sidecar bind their own address
with the catalog's ports, exactly as on separate machines. Re-running `up` on a changed catalog
applies the change: sidecar files are swapped atomically and the running Envoys reload them;
only processes whose own start-up inputs changed (a bootstrap, an app command) are restarted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from meshgen.deploy.local.processes import alive, http_ok, port_free, spawn, stop, tcp_open, wait_until
from meshgen.deploy.local.state import MeshState, Process, clear_state, load_state, save_state
from meshgen.errors import CatalogError, InputError, UserError
from meshgen.model import Mesh, load_mesh
from meshgen.model.mesh import Instance
from meshgen.render.envoy import render_envoy
from meshgen.render.envoy.names import BOOTSTRAP_FILE
from meshgen.render.envoy.validate import find_envoy
from meshgen.render.output import atomic_write, write_tree


@dataclass(frozen=True)
class Spec:
    """A process the mesh should have running."""

    name: str
    kind: str
    argv: list[str]
    env: dict[str, str]
    ready_address: tuple[str, int]
    instance: str | None = None
    admin: tuple[str, int] | None = None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps([self.argv, sorted(self.env.items())]).encode()).hexdigest()[:16]


@dataclass
class UpReport:
    mesh: Mesh
    state: MeshState
    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    files_changed: int = 0
    applied: bool = False  # an existing mesh was changed in place
    notes: list[str] = field(default_factory=list)


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
            externals.append(dataclasses.replace(external, address=address, port=port))
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
    service = mesh.service(instance.service)
    host = instance.host
    env = {
        "MESHGEN_MESH": mesh.name,
        "MESHGEN_SERVICE": instance.service,
        "MESHGEN_VERSION": instance.version,
        "MESHGEN_INSTANCE": instance.id,
        "MESHGEN_LISTEN": f"{host.local_address}:{instance.app_port}",
        "MESHGEN_PROTOCOL": "tcp" if service.protocol == "tcp" else "http",
        "MESHGEN_OUTBOUND": f"{host.local_address}:{instance.outbound_port}",
        **dict(instance.env),
    }
    argv = list(instance.command) if instance.command else [sys.executable, "-m", "meshgen.apps.demo"]
    return Spec(f"{instance.id} app", "app", argv, env, (host.local_address, instance.app_port), instance.id)


def _envoy_spec(envoy: str, instance: Instance, config_dir: Path, files: dict[str, str]) -> Spec:
    bootstrap = files[f"{instance.id}/{BOOTSTRAP_FILE}"]
    argv = [
        envoy,
        "-c",
        str(config_dir / instance.id / BOOTSTRAP_FILE),
        # Many sidecars share this machine: no shared-memory hot restart, one worker each.
        "--disable-hot-restart",
        "--concurrency",
        "1",
        "--log-level",
        "warn",
        "--drain-time-s",
        "2",
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


def plan(mesh: Mesh, envoy: str, config_dir: Path, files: dict[str, str]) -> list[Spec]:
    """Processes in start order: the collector, every app, then every sidecar."""
    collector = _collector_spec(mesh)
    specs = [collector] if collector else []
    specs += [_app_spec(mesh, i) for i in mesh.instances]
    specs += [_envoy_spec(envoy, i, config_dir, files) for i in mesh.instances]
    return specs


def _start(spec: Spec, state_dir: Path) -> Process:
    log = state_dir / "logs" / f"{spec.name.replace(' ', '.')}.log"
    address = f"{spec.ready_address[0]}:{spec.ready_address[1]}"
    admin = f"{spec.admin[0]}:{spec.admin[1]}" if spec.admin else None
    process = spawn(
        spec.name, spec.kind, spec.argv, log, spec.env, instance=spec.instance, address=address, admin=admin
    )
    process.fingerprint = spec.fingerprint
    return process


def _wait_ready(spec: Spec, process: Process) -> None:
    address, port = spec.ready_address
    if spec.admin is None:
        wait_until(process, lambda: tcp_open(address, port))
        return
    admin = f"http://{spec.admin[0]}:{spec.admin[1]}"
    wait_until(process, lambda: http_ok(f"{admin}/ready", "LIVE") and tcp_open(address, port))


def _start_all(specs: list[Spec], state: MeshState, state_dir: Path) -> list[str]:
    """Start `specs` in order, recording each in the state at once; wait for all to be ready."""
    started = []
    for kind in ("collector", "app", "envoy"):
        batch = [s for s in specs if s.kind == kind]
        processes = []
        for spec in batch:
            process = _start(spec, state_dir)
            state.processes.append(process)
            save_state(state_dir, state)
            processes.append(process)
        for spec, process in zip(batch, processes, strict=True):
            _wait_ready(spec, process)
            started.append(spec.name)
    return started


def _check_ports_free(mesh: Mesh) -> None:
    taken = []
    for service in mesh.services:
        for instance in service.instances:
            for socket in service.sockets(instance):
                if not port_free(socket.address, socket.port):
                    taken.append(f"{socket.address}:{socket.port} ({instance.id} {socket.owner})")
    if mesh.tracing is not None and not port_free(mesh.tracing.collector_address, mesh.tracing.collector_port):
        taken.append(f"{mesh.tracing.collector_address}:{mesh.tracing.collector_port} (trace collector)")
    if taken:
        raise UserError("cannot start: already in use:\n" + "\n".join(f"  {t}" for t in taken))


def _render(mesh: Mesh, config_dir: Path) -> dict[str, str]:
    return render_envoy(mesh, PurePosixPath(config_dir.resolve().as_posix()))


def up(catalog: Path, state_dir: Path, externals: dict[str, tuple[str, int]] | None = None) -> UpReport:
    mesh, notes = localize_externals(load_mesh(catalog), externals or {})
    check_runs_locally(mesh)
    envoy = find_envoy()
    existing = load_state(state_dir)
    if existing is not None and any(alive(p.pid) for p in existing.processes):
        if existing.mesh != mesh.name:
            raise UserError(f"mesh {existing.mesh} is running; `meshgen down` it first")
        report = _apply(mesh, catalog, envoy, existing, state_dir)
        report.notes = notes
        return report
    if existing is not None:
        clear_state(state_dir)  # left by a mesh whose processes are all gone
    _check_ports_free(mesh)
    config_dir = state_dir / "config"
    files = _render(mesh, config_dir)
    write_tree(config_dir, files)
    state = MeshState(mesh=mesh.name, catalog=str(catalog.resolve()), config_dir=str(config_dir))
    save_state(state_dir, state)
    try:
        started = _start_all(plan(mesh, envoy, config_dir, files), state, state_dir)
    except BaseException:
        down(state_dir)
        raise
    return UpReport(mesh=mesh, state=state, started=started, files_changed=len(files), notes=notes)


def _apply(mesh: Mesh, catalog: Path, envoy: str, state: MeshState, state_dir: Path) -> UpReport:
    """Bring a running mesh to the catalog: new processes first, then the file swap (running
    Envoys reload it), then processes that are gone or must restart."""
    config_dir = Path(state.config_dir)
    files = _render(mesh, config_dir)
    running = state.by_name()
    new_instances = {i.id for i in mesh.instances} - {p.instance for p in state.processes if p.instance}
    for relative, content in files.items():
        if relative.split("/", 1)[0] in new_instances:
            atomic_write(config_dir / relative, content)  # a new sidecar needs its files to start
    desired = plan(mesh, envoy, config_dir, files)
    report = UpReport(mesh=mesh, state=state, applied=True)
    fresh = [s for s in desired if s.name not in running]
    report.started = _start_all(fresh, state, state_dir)
    changes = write_tree(config_dir, files)
    report.files_changed = len(changes.added) + len(changes.changed) + len(changes.removed)
    wanted = {s.name: s for s in desired}
    for process in list(state.processes):
        spec = wanted.get(process.name)
        if spec is None or spec.fingerprint != process.fingerprint or not alive(process.pid):
            stop(process)
            state.processes.remove(process)
            save_state(state_dir, state)
            if spec is None:
                report.stopped.append(process.name)
            else:
                _start_all([spec], state, state_dir)
                report.restarted.append(process.name)
    state.catalog = str(catalog.resolve())
    save_state(state_dir, state)
    return report


def down(state_dir: Path) -> list[str]:
    """Stop every process of the running mesh (sidecars first); returns their names."""
    state = load_state(state_dir)
    if state is None:
        return []
    order = {"envoy": 0, "app": 1, "collector": 2}
    stopped = []
    for process in sorted(state.processes, key=lambda p: order.get(p.kind, 3)):
        stop(process)
        stopped.append(process.name)
    clear_state(state_dir)
    return stopped


@dataclass(frozen=True)
class ProcessStatus:
    process: Process
    running: bool
    ready: bool | None  # envoys: admin /ready says LIVE


def status(state_dir: Path) -> tuple[MeshState | None, list[ProcessStatus]]:
    state = load_state(state_dir)
    if state is None:
        return None, []
    result = []
    for process in state.processes:
        running = alive(process.pid)
        ready = None
        if process.admin and running:
            ready = http_ok(f"http://{process.admin}/ready", "LIVE")
        result.append(ProcessStatus(process, running, ready))
    return state, result
