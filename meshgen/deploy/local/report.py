"""What `meshgen up` and `meshgen status` print: tables, or with --json the documents the README
describes under "Machine-readable output"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshgen.deploy.local.processes import log_tail
from meshgen.deploy.local.prometheus import prometheus_url, runs_prometheus
from meshgen.deploy.local.runner import ProcessStatus, UpReport
from meshgen.deploy.local.state import MeshState


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def describe_up(report: UpReport, state_dir: Path) -> str:
    mesh = report.mesh
    rows = [["SERVICE", "VERSION", "INSTANCE", "MESH ADDRESS", "APP", "ADMIN"]]
    for service in mesh.services:
        for instance in service.instances:
            host = instance.host
            rows.append(
                [
                    service.name,
                    instance.version,
                    instance.id,
                    f"{host.address}:{instance.inbound_port}",
                    f"{host.local_address}:{instance.app_port}",
                    f"http://{host.local_address}:{instance.admin_port}",
                ]
            )
    lines = []
    if report.applied:
        lines.append(
            f"mesh {mesh.name} updated: {report.files_changed} sidecar files swapped live; "
            f"started {len(report.started)}, restarted {len(report.restarted)}, stopped {len(report.stopped)}"
        )
        lines += [f"  restarted {name}" for name in report.restarted]
        lines += [f"  started {name}" for name in report.started]
        lines += [f"  stopped {name}" for name in report.stopped]
    else:
        lines.append(f"mesh {mesh.name} is up: {len(report.started)} processes")
    lines += [f"note: {note}" for note in report.notes]
    lines += ["", _table(rows), ""]
    security = mesh.security
    if security.enabled:
        lines.append(
            f"mutual TLS: {security.mtls}, identities spiffe://{security.trust_domain}/service/<name>; "
            f"certificates in {state_dir / 'tls'}, renewed at half their {security.leaf_lifetime} "
            "(meshgen certs status)"
        )
    else:
        lines.append("mutual TLS: off (plaintext between sidecars, no authorization)")
    if mesh.tracing is not None:
        lines.append(f"traces:  http://{mesh.tracing.collector_address}:{mesh.tracing.collector_port}/api/v2/traces")
    if runs_prometheus(mesh):
        lines.append(f"metrics: {prometheus_url(mesh)} (Prometheus, scraping every sidecar; meshgen top)")
    for gateway in mesh.gateways:
        for instance in gateway.instances:
            lines.append(f"gateway {gateway.name}:  curl {gateway.http_url(instance)}")
            https = gateway.https_url(instance)
            if https is not None:
                lines.append(f"gateway {gateway.name}:  {https}")
    for entry in (s for s in mesh.services if s.edge):
        first = entry.instances[0]
        lines.append(f"call the edge:  curl http://{first.host.address}:{first.inbound_port}/")
    if mesh.dashboard is not None:
        lines.append(f"dashboard: {mesh.dashboard.url}")
    lines.append(f"logs:    {state_dir / 'logs'}    stop: meshgen down")
    return "\n".join(lines)


def describe_status(state: MeshState, processes: list[ProcessStatus]) -> str:
    rows = [["PROCESS", "PID", "STATE", "ADDRESS", "ADMIN", "LOG"]]
    for item in processes:
        process = item.process
        condition = "running" if item.running else "DOWN"
        if item.running and item.ready is False:
            condition = "NOT READY"
        elif item.running and item.problems:
            condition = "CONFIG REFUSED"
        rows.append(
            [process.name, str(process.pid), condition, process.address or "", process.admin or "", process.log]
        )
    up = sum(1 for p in processes if p.running)
    text = f"mesh {state.mesh} from {state.catalog}: {up}/{len(processes)} processes running\n\n" + _table(rows)
    for item in processes:
        if item.problems:
            text += f"\n\n{item.process.name}:\n" + "\n".join(f"  {problem}" for problem in item.problems)
    for item in processes:
        if not item.running:
            # Why it stopped is usually in its last words.
            tail = log_tail(item.process, lines=10)
            text += f"\n\n{item.process.name} is not running; the end of {item.process.log}:\n" + "\n".join(
                f"  {line}" for line in tail.splitlines()
            )
    return text


def _instances(report: UpReport) -> list[dict[str, str]]:
    return [
        {
            "service": service.name,
            "version": instance.version,
            "instance": instance.id,
            "mesh_address": f"{instance.host.address}:{instance.inbound_port}",
            "app": f"{instance.host.local_address}:{instance.app_port}",
            "admin": f"http://{instance.host.local_address}:{instance.admin_port}",
        }
        for service in report.mesh.services
        for instance in service.instances
    ]


def up_json(report: UpReport, state_dir: Path) -> dict[str, Any]:
    mesh = report.mesh
    tracing = mesh.tracing
    return {
        "mesh": mesh.name,
        "applied": report.applied,
        "started": report.started,
        "restarted": report.restarted,
        "stopped": report.stopped,
        "files_changed": report.files_changed,
        "notes": report.notes,
        "mtls": mesh.security.mtls,
        "instances": _instances(report),
        "edges": [
            f"http://{e.instances[0].host.address}:{e.instances[0].inbound_port}/"
            for e in mesh.services
            if e.edge and e.instances
        ],
        "gateways": [
            {
                "gateway": gateway.name,
                "instance": instance.id,
                "http": gateway.http_url(instance),
                "https": gateway.https_url(instance),
            }
            for gateway in mesh.gateways
            for instance in gateway.instances
        ],
        "traces": f"http://{tracing.collector_address}:{tracing.collector_port}/api/v2/traces" if tracing else None,
        "prometheus": prometheus_url(mesh) if runs_prometheus(mesh) else None,
        "dashboard": mesh.dashboard.url if mesh.dashboard is not None else None,
        "state_dir": str(state_dir),
    }


def status_json(state: MeshState | None, processes: list[ProcessStatus]) -> dict[str, Any]:
    return {
        "mesh": state.mesh if state else None,
        "catalog": state.catalog if state else None,
        "healthy": state is not None and all(p.healthy for p in processes),
        "processes": [
            {
                "name": item.process.name,
                "kind": item.process.kind,
                "instance": item.process.instance,
                "pid": item.process.pid,
                "running": item.running,
                "ready": item.ready,
                "problems": list(item.problems),
                "address": item.process.address,
                "admin": item.process.admin,
                "log": item.process.log,
            }
            for item in processes
        ],
    }
