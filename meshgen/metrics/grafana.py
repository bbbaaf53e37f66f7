"""A Grafana dashboard of the mesh, as JSON: RED per service and per edge, from Prometheus.

Services are read at their own sidecars' inbound side, edges at the caller's sidecars towards each
version of the callee, as `meshgen top` reads them (meshgen.metrics.red). The Prometheus data
source is a dashboard variable, so the same file imports into any Grafana; the mesh is a constant
and the services a multi-value variable, both from the catalog.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from meshgen.metrics.red import (
    EDGE_REQUESTS,
    EDGE_TIME,
    INBOUND_PREFIXES,
    INBOUND_REQUESTS,
    INBOUND_TIME,
    edge_clusters,
)
from meshgen.model import Mesh

SCHEMA_VERSION = 39  # Grafana 10.4 / 11: classic dashboard JSON
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"  # at least four scrape intervals: Grafana's own choice for rate()


def uid(mesh: Mesh) -> str:
    """Grafana's uid is at most 40 characters: the mesh name, shortened by a digest when long."""
    name = f"meshgen-{mesh.name}"
    return name if len(name) <= 40 else f"{name[:31]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _selector(mesh: Mesh, metric: str, **match: str) -> str:
    """`metric{...}` for the dashboard's mesh and services; values of `match` are regexes."""
    labels = ['mesh="$mesh"', 'service=~"$service"', *(f'{k}=~"{v}"' for k, v in match.items())]
    return f"{metric}{{{','.join(labels)}}}"


def _rate(selector: str, by: str) -> str:
    return f"sum by ({by}) (rate({selector}[{RATE}]))"


def _error_percent(requests: str, by: str) -> str:
    """5xx answers as a share of all; 0 where none failed (Envoy creates a 5xx counter only at the
    first 5xx answer, and a missing numerator must not hide the series)."""
    failed = requests[:-1] + ',envoy_response_code_class="5"}'
    return f"100 * ({_rate(failed, by)} or {_rate(requests, by)} * 0) / {_rate(requests, by)}"


def _quantile(q: float, buckets: str, by: str) -> str:
    return f"histogram_quantile({q}, {_rate(buckets, f'{by}, le')})"


def expressions(mesh: Mesh) -> dict[str, dict[str, str]]:
    """Panel title -> {expr, legend, unit}, services first, then edges."""
    inbound = {"envoy_http_conn_manager_prefix": "|".join(INBOUND_PREFIXES)}
    names = sorted({cluster for _, cluster in edge_clusters(mesh)})
    clusters = "|".join(re.escape(cluster).replace("\\", "\\\\") for cluster in names)
    edge = {"envoy_cluster_name": clusters}
    service_requests = _selector(mesh, INBOUND_REQUESTS, **inbound)
    service_time = _selector(mesh, INBOUND_TIME, **inbound)
    edge_requests = _selector(mesh, EDGE_REQUESTS, **edge)
    edge_time = _selector(mesh, EDGE_TIME, **edge)
    by_edge = "service, envoy_cluster_name"
    return {
        "Requests/s": {"expr": _rate(service_requests, "service"), "legend": "{{service}}", "unit": "reqps"},
        "Errors (5xx %)": {
            "expr": _error_percent(service_requests, "service"),
            "legend": "{{service}}",
            "unit": "percent",
        },
        "Duration p50": {"expr": _quantile(0.5, service_time, "service"), "legend": "{{service}}", "unit": "ms"},
        "Duration p99": {"expr": _quantile(0.99, service_time, "service"), "legend": "{{service}}", "unit": "ms"},
        "Edge requests/s": {
            "expr": _rate(edge_requests, by_edge),
            "legend": "{{service}} → {{envoy_cluster_name}}",
            "unit": "reqps",
        },
        "Edge errors (5xx %)": {
            "expr": _error_percent(edge_requests, by_edge),
            "legend": "{{service}} → {{envoy_cluster_name}}",
            "unit": "percent",
        },
        "Edge duration p50": {
            "expr": _quantile(0.5, edge_time, by_edge),
            "legend": "{{service}} → {{envoy_cluster_name}}",
            "unit": "ms",
        },
        "Edge duration p99": {
            "expr": _quantile(0.99, edge_time, by_edge),
            "legend": "{{service}} → {{envoy_cluster_name}}",
            "unit": "ms",
        },
    }


def _panel(panel_id: int, title: str, query: dict[str, str], x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 6, "x": x, "y": y},
        "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": query["expr"], "legendFormat": query["legend"]}],
        "fieldConfig": {"defaults": {"unit": query["unit"], "min": 0}, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def _row(panel_id: int, title: str, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
        "panels": [],
    }


def dashboard(mesh: Mesh) -> dict[str, Any]:
    queries = list(expressions(mesh).items())
    panels: list[dict[str, Any]] = []
    rows = [
        ("Services: every request each service's own sidecars answered (inbound)", queries[:4]),
        ("Edges: caller → callee version, at the caller's sidecars (each try counts)", queries[4:]),
    ]
    y = 0
    for title, row_queries in rows:
        panels.append(_row(len(panels) + 1, title, y))
        y += 1
        for index, (panel_title, query) in enumerate(row_queries):
            panels.append(_panel(len(panels) + 1, panel_title, query, 6 * index, y))
        y += 8
    services = [g.name for g in mesh.gateways] + [s.name for s in mesh.services if s.is_http]
    return {
        "uid": uid(mesh),
        "title": f"meshgen {mesh.name}: services and edges",
        "description": f"Requests, errors and durations of mesh {mesh.name}, generated by meshgen from its "
        "catalog: regenerate (meshgen grafana) rather than edit.",
        "tags": ["meshgen", mesh.name],
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-15m", "to": "now"},
        "refresh": "5s",
        "timezone": "browser",
        "graphTooltip": 1,
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "hide": 0,
                },
                {"name": "mesh", "type": "constant", "query": mesh.name, "hide": 2},
                {
                    "name": "service",
                    "label": "Service",
                    "type": "custom",
                    "query": ",".join(services),
                    "multi": True,
                    "includeAll": True,
                    "current": {"text": ["All"], "value": ["$__all"]},
                    "options": [],
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }
