"""Recent traces from the mesh's collector (its Zipkin v2 API), as a list and as waterfalls."""

from __future__ import annotations

from typing import Any

from meshgen.analysis.waterfall import extent, ordered

Span = dict[str, Any]


def _service(span: Span) -> str:
    return str(span.get("localEndpoint", {}).get("serviceName", "?"))


def _status(span: Span) -> str:
    return str(span.get("tags", {}).get("http.status_code", ""))


def failed(span: Span) -> bool:
    status = _status(span)
    return bool(span.get("tags", {}).get("error")) or (status.isdigit() and int(status) >= 500)


def summary(spans: list[Span]) -> dict[str, Any]:
    """One line of the trace list: where it started, how long it took, whether a hop failed."""
    start, total = extent(spans)
    roots = [span for depth, span in ordered(spans) if depth == 0]
    root = roots[0] if roots else spans[0]
    services = []
    for _, span in ordered(spans):
        if _service(span) not in services:
            services.append(_service(span))
    tags = root.get("tags", {})
    request = f"{tags.get('http.method', '')} {tags.get('http.url', root.get('name', ''))}".strip()
    return {
        "id": str(spans[0]["traceId"]),
        "root": f"{_service(root)}: {request}",
        "services": services,
        "spans": len(spans),
        "duration_ms": total / 1000,
        "start": start // 1000,  # milliseconds since the epoch
        "failed": any(failed(s) for s in spans),
        # The first span of a call has no parent; until it arrives, spans of later hops stand alone.
        "partial": bool(root.get("parentId")),
    }


def waterfall(spans: list[Span]) -> dict[str, Any]:
    """Every span of a trace as a bar: depth in the call tree, start and length in percent of the trace."""
    start, total = extent(spans)
    rows = []
    for depth, span in ordered(spans):
        tags = span.get("tags", {})
        rows.append(
            {
                "depth": depth,
                "service": _service(span),
                "instance": str(tags.get("node_id", "")),
                "kind": str(span.get("kind", "")).lower(),
                "name": str(span.get("name", "")),
                "offset": 100 * (span.get("timestamp", start) - start) / total,
                "width": 100 * span.get("duration", 0) / total,
                "duration_ms": span.get("duration", 0) / 1000,
                "status": _status(span),
                "cluster": str(tags.get("upstream_cluster", "")),
                "failed": failed(span),
            }
        )
    return {**summary(spans), "rows": rows}
