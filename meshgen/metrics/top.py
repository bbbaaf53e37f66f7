"""`meshgen top`: requests/s, error % and p50/p99 per service and per edge, as a table or JSON."""

from __future__ import annotations

from typing import Any

from meshgen.errors import UserError
from meshgen.metrics.red import report
from meshgen.metrics.sources import PrometheusSource, SidecarSource
from meshgen.model import Mesh

SOURCES = ("auto", "prometheus", "sidecars")
# Prometheus scrapes every 2 s: 10 s is five samples. Straight from the sidecars, two samples a
# second apart.
DEFAULT_WINDOW = {"prometheus": 10.0, "sidecars": 1.0}


def choose(mesh: Mesh, source: str) -> PrometheusSource | SidecarSource:
    """The source asked for; `auto`: the mesh's Prometheus when it answers, else the sidecars."""
    if source == "sidecars":
        return SidecarSource(mesh)
    if mesh.metrics is None:
        if source == "prometheus":
            raise UserError("the catalog names no Prometheus (mesh.metrics.prometheus); use --source sidecars")
        return SidecarSource(mesh)
    prometheus = PrometheusSource(mesh)
    if prometheus.ready():
        return prometheus
    if source == "prometheus":
        raise UserError(f"Prometheus at {prometheus.url} does not answer; use --source sidecars")
    return SidecarSource(mesh)


def collect(mesh: Mesh, source: PrometheusSource | SidecarSource, window: float | None = None) -> dict[str, Any]:
    """The document `meshgen top --json` prints."""
    seconds = window if window is not None else DEFAULT_WINDOW[source.name]
    document = report(mesh, source.samples(seconds))
    where = source.url if isinstance(source, PrometheusSource) else None
    return {"mesh": mesh.name, "source": source.name, "prometheus": where, **document}


def _cell(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}{suffix}" if value < 1000 else f"{value:.0f}{suffix}"
    return f"{value}{suffix}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def _rows(entries: list[dict[str, Any]], first: str, name: Any) -> list[list[str]]:
    rows = [[first, "REQ/S", "ERR%", "P50", "P99", "REQUESTS"]]
    for entry in entries:
        rows.append(
            [
                name(entry),
                _cell(entry["rps"]),
                _cell(entry["error_percent"], "%"),
                _cell(entry["p50_ms"], "ms"),
                _cell(entry["p99_ms"], "ms"),
                str(entry["requests"]),
            ]
        )
    return rows


def to_table(document: dict[str, Any]) -> str:
    where = f"Prometheus {document['prometheus']}" if document["prometheus"] else "the sidecars' stats listeners"
    lines = [
        f"mesh {document['mesh']}: the last {document['window_seconds']:g}s, from {where}",
        "",
        _table(
            _rows(
                document["services"],
                "SERVICE (inbound)",
                lambda e: e["service"] + (" (gateway)" if e.get("kind") == "gateway" else ""),
            )
        ),
        "",
        _table(_rows(document["edges"], "CALLER -> CALLEE", lambda e: f"{e['caller']} -> {e['callee']}")),
    ]
    if document["missing"]:
        why = (
            f"Prometheus has no sample of them both now and {document['window_seconds']:g}s ago (started or scraped "
            "since less long: a shorter --window, or wait)"
            if document["prometheus"]
            else "their stats listeners did not answer"
        )
        lines += ["", f"no data from: {', '.join(document['missing'])}: {why}"]
    return "\n".join(lines)
