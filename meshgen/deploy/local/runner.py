"""`meshgen up`, `status` and `down`: a whole mesh as processes on this machine.

Every host is a loopback address, so every instance's app and sidecar bind their own address
with the catalog's ports, exactly as on separate machines. Re-running `up` on a changed catalog
applies the change: sidecar files are swapped atomically and the running Envoys reload them;
only processes whose own start-up inputs changed (a bootstrap, an app command) are restarted.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from meshgen.deploy.local.certs import TLS_DIR, IdentityPlan, ensure_identities, save_plan, wait_for_envoys
from meshgen.deploy.local.lifecycle import hot_restart, start_all, stop_for_good
from meshgen.deploy.local.limits import check_inotify, held_by, watchers_needed
from meshgen.deploy.local.plan import (
    check_runs_locally,
    local_limitations,
    localize_externals,
    localize_paths,
    plan,
)
from meshgen.deploy.local.processes import alive, http_ok, port_free
from meshgen.deploy.local.prometheus import notes as prometheus_notes
from meshgen.deploy.local.prometheus import runs_prometheus
from meshgen.deploy.local.prometheus import write_files as write_prometheus_files
from meshgen.deploy.local.sidecars import config_problems
from meshgen.deploy.local.state import MeshState, Process, clear_state, load_state, save_state
from meshgen.deploy.local.swap import mode_steps, swap, with_mode
from meshgen.errors import UserError
from meshgen.model import Mesh, load_mesh
from meshgen.render.envoy import Layout, render_envoy
from meshgen.render.envoy.validate import find_envoy, split_sidecars, validate_sidecars
from meshgen.render.output import atomic_write, compare, write_tree

CONFIG_DIR = "config"


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


def _check_ports_free(mesh: Mesh) -> None:
    taken = []
    for service in mesh.services:
        for instance in service.instances:
            for socket in service.sockets(instance):
                if not port_free(socket.address, socket.port):
                    taken.append(f"{socket.address}:{socket.port} ({instance.id} {socket.owner})")
    for gateway in mesh.gateways:
        for instance in gateway.instances:
            for socket in gateway.sockets(instance):
                if not port_free(socket.address, socket.port):
                    taken.append(f"{socket.address}:{socket.port} ({instance.id} {socket.owner})")
    if mesh.tracing is not None and not port_free(mesh.tracing.collector_address, mesh.tracing.collector_port):
        taken.append(f"{mesh.tracing.collector_address}:{mesh.tracing.collector_port} (trace collector)")
    metrics = mesh.metrics
    if (
        metrics is not None
        and runs_prometheus(mesh)
        and not port_free(metrics.prometheus_address, metrics.prometheus_port)
    ):
        taken.append(f"{metrics.prometheus_address}:{metrics.prometheus_port} (Prometheus)")
    if taken:
        raise UserError("cannot start: already in use:\n" + "\n".join(f"  {t}" for t in taken))


def layout(state_dir: Path) -> Layout:
    """Sidecar configs in <state>/config, identities and trust bundle in <state>/tls."""
    root = PurePosixPath(state_dir.resolve().as_posix())
    return Layout(root / CONFIG_DIR, root / TLS_DIR)


def _identities(mesh: Mesh, state_dir: Path, envoys: list[Process]) -> None:
    """Certificates for every instance that needs one, before any config names them."""
    if mesh.security.enabled:
        identity_plan = IdentityPlan.of(mesh)
        save_plan(state_dir, identity_plan)
        ensure_identities(state_dir, identity_plan, wait=wait_for_envoys(envoys) if envoys else None)


def _quiet(_line: str) -> None:
    pass


def up(
    catalog: Path,
    state_dir: Path,
    externals: dict[str, tuple[str, int]] | None = None,
    progress: Callable[[str], None] = _quiet,
) -> UpReport:
    """Start the mesh of `catalog`, or bring the running one to it. Interrupted (Ctrl-C) or failed
    while starting a new mesh, it stops everything it started. Interrupted while changing a running
    mesh, it leaves every process recorded and running: `up` again finishes the change."""
    mesh, notes = localize_externals(localize_paths(load_mesh(catalog), catalog), externals or {})
    check_runs_locally(mesh)
    notes += local_limitations(mesh) + prometheus_notes(mesh) + [f"deprecated: {d}" for d in mesh.deprecations]
    envoy = find_envoy()
    existing = load_state(state_dir)
    if existing is not None and any(alive(p) for p in existing.processes):
        if existing.mesh != mesh.name:
            raise UserError(f"mesh {existing.mesh} is running; `meshgen down` it first")
        progress(f"mesh {mesh.name} is running: applying {catalog}")
        report = _apply(mesh, catalog, envoy, existing, state_dir, progress=progress)
        report.notes = notes
        return report
    if existing is not None:
        clear_state(state_dir)  # left by a mesh whose processes are all gone
    _check_ports_free(mesh)
    config_dir = state_dir / CONFIG_DIR
    files = render_envoy(mesh, layout(state_dir))
    check_inotify(watchers_needed(files))
    progress(f"validating {len(mesh.proxies)} Envoy configs with Envoy")
    validate_sidecars(split_sidecars(files), envoy)  # nothing is written unless Envoy accepts all of it
    _identities(mesh, state_dir, [])
    write_tree(config_dir, files)
    write_prometheus_files(mesh, state_dir)
    state = MeshState(
        mesh=mesh.name, catalog=str(catalog.resolve()), config_dir=str(config_dir), mtls=mesh.security.mtls
    )
    save_state(state_dir, state)
    specs = plan(mesh, envoy, config_dir, files, state_dir)
    progress(f"starting {len(specs)} processes")
    try:
        started = start_all(specs, state, state_dir, progress)
    except BaseException:  # Ctrl-C included: what was started is recorded, so all of it stops
        progress("stopping what was started")
        down(state_dir)
        raise
    return UpReport(mesh=mesh, state=state, started=started, files_changed=len(files), notes=notes)


def _apply(
    mesh: Mesh, catalog: Path, envoy: str, state: MeshState, state_dir: Path, *, progress: Callable[[str], None]
) -> UpReport:
    """Bring a running mesh to the catalog: new processes first, then the file swap (running
    Envoys reload it), then processes that are gone or must restart."""
    config_dir = Path(state.config_dir)
    steps = [with_mode(mesh, mode) for mode in mode_steps(state.mtls, mesh.security.mtls)]
    renders = [render_envoy(step, layout(state_dir)) for step in steps]
    # Envoy checks every sidecar that would change, at every step, before any running Envoy can
    # see a new file.
    before = compare(config_dir, renders[0])
    touched = {path.split("/", 1)[0] for path in before.added + before.changed}
    for earlier, later in itertools.pairwise(renders):
        touched |= {path.split("/", 1)[0] for path, text in later.items() if earlier.get(path) != text}
    for files in renders:
        sidecars = split_sidecars(files)
        validate_sidecars({name: sidecars[name] for name in touched if name in sidecars}, envoy)
    envoys = {p.instance: p for p in state.processes if p.kind == "envoy" and p.instance and alive(p)}
    # What the mesh's Envoys will hold once changed, against what they hold now.
    check_inotify(watchers_needed(renders[-1]), releasing=held_by([p.pid for p in envoys.values()]))
    enabled = [step for step in steps if step.security.enabled]
    if enabled:
        # Envoys running without mutual TLS use no certificate yet: nothing to wait for.
        using = list(envoys.values()) if state.mtls != "off" else []
        _identities(enabled[0] if not mesh.security.enabled else mesh, state_dir, using)
    running = state.by_name()
    new_instances = {i.id for i in mesh.proxies} - {p.instance for p in state.processes if p.instance}
    for relative, content in renders[0].items():
        if relative.split("/", 1)[0] in new_instances:
            atomic_write(config_dir / relative, content)  # a new sidecar needs its files to start
    files = renders[-1]
    write_prometheus_files(mesh, state_dir)  # a running Prometheus rereads its targets by itself
    desired = plan(mesh, envoy, config_dir, files, state_dir)
    report = UpReport(mesh=mesh, state=state, applied=True)
    fresh = [s for s in desired if s.name not in running]
    if fresh:
        progress(f"starting {len(fresh)} new processes")
    report.started = start_all(fresh, state, state_dir, progress)
    envoys = {p.instance: p for p in state.processes if p.kind == "envoy" and p.instance and alive(p)}
    for step, step_files in zip(steps, renders, strict=True):
        progress(f"swapping sidecar files (mutual TLS {step.security.mtls}); waiting for every Envoy to load them")
        changes = swap(config_dir, step_files, state.mtls, step.security.mtls, envoys)
        report.files_changed += len(changes.added) + len(changes.changed) + len(changes.removed)
        state.mtls = step.security.mtls
        save_state(state_dir, state)
    wanted = {s.name: s for s in desired}
    for process in list(state.processes):
        spec = wanted.get(process.name)
        running_envoy = process.kind == "envoy" and alive(process) and process.base_id is not None
        if spec is not None and spec.fingerprint != process.fingerprint and running_envoy:
            progress(f"hot-restarting {process.name}")
            hot_restart(spec, process, state, state_dir)
            report.restarted.append(process.name)
        elif spec is None or spec.fingerprint != process.fingerprint or not alive(process):
            progress(f"stopping {process.name}")
            stop_for_good(process, state_dir)
            state.processes.remove(process)
            save_state(state_dir, state)
            if spec is None:
                report.stopped.append(process.name)
            else:
                start_all([spec], state, state_dir)
                report.restarted.append(process.name)
    state.catalog = str(catalog.resolve())
    save_state(state_dir, state)
    return report


def down(state_dir: Path) -> list[str]:
    """Stop every process of the running mesh (sidecars first); returns the names of those that
    were still running. A recorded PID that now belongs to another process is left alone."""
    state = load_state(state_dir)
    if state is None:
        return []
    order = {"envoy": 0, "app": 1, "renewer": 2, "collector": 3}
    stopped = []
    for process in sorted(state.processes, key=lambda p: order.get(p.kind, 3)):
        if stop_for_good(process, state_dir):
            stopped.append(process.name)
    clear_state(state_dir)
    return stopped


@dataclass(frozen=True)
class ProcessStatus:
    process: Process
    running: bool
    ready: bool | None  # envoys: admin /ready says LIVE
    problems: tuple[str, ...] = ()  # envoys: files on disk it refused, listeners it could not start

    @property
    def healthy(self) -> bool:
        return self.running and self.ready is not False and not self.problems


def status(state_dir: Path) -> tuple[MeshState | None, list[ProcessStatus]]:
    state = load_state(state_dir)
    if state is None:
        return None, []
    result = []
    for process in state.processes:
        running = alive(process)
        ready = None
        problems: tuple[str, ...] = ()
        if process.admin and running:
            ready = http_ok(f"http://{process.admin}/ready", "LIVE")
            problems = tuple(config_problems(process, Path(state.config_dir)))
        result.append(ProcessStatus(process, running, ready, problems))
    return state, result
