"""Zipkin traces drawn as terminal waterfalls: which hop took how long, where a request failed."""

from __future__ import annotations

from typing import Any

BAR_WIDTH = 40


def _children(spans: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    ids = {s["id"] for s in spans}
    tree: dict[str | None, list[dict[str, Any]]] = {}
    for span in sorted(spans, key=lambda s: (s.get("timestamp", 0), s["id"])):
        parent = span.get("parentId")
        tree.setdefault(parent if parent in ids else None, []).append(span)
    return tree


def _failure(span: dict[str, Any]) -> str:
    tags = span.get("tags", {})
    status = tags.get("http.status_code", "")
    if tags.get("error") or (status.isdigit() and int(status) >= 500):
        return f"  ERROR {status or tags.get('error')}"
    return ""


def ordered(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Each span with its depth, parents before their children, siblings by start time."""
    tree = _children(spans)
    found: list[tuple[int, dict[str, Any]]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in tree.get(parent, []):
            found.append((depth, span))
            walk(span["id"], depth + 1)

    walk(None, 0)
    return found


def extent(spans: list[dict[str, Any]]) -> tuple[int, int]:
    """When the trace starts (Zipkin microseconds) and how long it lasts (at least 1)."""
    start = min(s.get("timestamp", 0) for s in spans)
    end = max(s.get("timestamp", 0) + s.get("duration", 0) for s in spans)
    return start, max(end - start, 1)


def draw(spans: list[dict[str, Any]]) -> str:
    if not spans:
        return "(empty trace)"
    start, total = extent(spans)
    lines = [f"trace {spans[0]['traceId']}  {total / 1000:.1f}ms  {len(spans)} spans"]
    for depth, span in ordered(spans):
        offset = int(BAR_WIDTH * (span.get("timestamp", start) - start) / total)
        length = max(1, int(BAR_WIDTH * span.get("duration", 0) / total))
        bar = " " * offset + "#" * min(length, BAR_WIDTH - offset)
        service = span.get("localEndpoint", {}).get("serviceName", "?")
        label = f"{'  ' * depth}{service} {span.get('kind', '').lower()} {span.get('name', '')}"
        lines.append(f"  {label:<56} |{bar:<{BAR_WIDTH}}| {span.get('duration', 0) / 1000:8.1f}ms{_failure(span)}")
    return "\n".join(lines)
