"""The service graph with routes and weights, as Mermaid or Graphviz DOT."""

from __future__ import annotations

import re

from meshgen.model.mesh import Mesh, Route, Service


def _node_id(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", p) for p in parts)


def _route_label(route: Route, share: float) -> str:
    match = "" if route.match.catch_all else f" [{route.match.describe()}]"
    return f"{route.name}{match}: {share:.4g}%"


def _version_edges(service: Service) -> list[tuple[str, str, str, bool]]:
    """(from node, to node, label, dashed) for each route target and mirror of `service`."""
    result = []
    for route in service.routes:
        for version, share in route.shares():
            result.append(
                (
                    _node_id("svc", service.name),
                    _node_id("ver", service.name, version),
                    _route_label(route, share),
                    False,
                )
            )
        if route.mirror is not None:
            label = f"{route.name}: mirror {route.mirror.percent:g}%"
            result.append(
                (_node_id("svc", service.name), _node_id("ver", service.name, route.mirror.version), label, True)
            )
    return result


def to_mermaid(mesh: Mesh) -> str:
    lines = ["flowchart LR"]
    for service in mesh.services:
        edge = " (edge)" if service.edge else ""
        lines.append(f'  {_node_id("svc", service.name)}["{service.name}{edge}<br/>{service.protocol}"]')
        for version in service.versions:
            count = len(version.instances)
            lines.append(
                f"  {_node_id('ver', service.name, version.name)}"
                f'(["{service.name} {version.name}<br/>{count} instance{"s" if count != 1 else ""}"])'
            )
    for external in mesh.externals:
        lines.append(f'  {_node_id("ext", external.name)}[/"{external.name}<br/>{external.address}:{external.port}"/]')
    for gateway in mesh.gateways:
        lines.append(f'  {_node_id("gw", gateway.name)}{{{{"gateway {gateway.name}<br/>:{gateway.port}"}}}}')
        for route in gateway.routes:
            label = f"{route.name}: {', '.join(route.domains)} {route.match.describe()}"
            lines.append(f'  {_node_id("gw", gateway.name)} ==>|"{label}"| {_node_id("svc", route.service)}')
    for service in mesh.services:
        for dependency in service.dependencies:
            target = _node_id("ext" if dependency.external else "svc", dependency.target)
            lines.append(f"  {_node_id('svc', service.name)} ==> {target}")
        for source, target, label, dashed in _version_edges(service):
            arrow = "-.->" if dashed else "-->"
            lines.append(f'  {source} {arrow}|"{label}"| {target}')
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    # Labels use DOT's own backslash-n for line breaks, so only quotes are escaped.
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(mesh: Mesh) -> str:
    lines = [f"digraph {_dot_quote(mesh.name)} {{", "  rankdir=LR;", "  node [fontname=Helvetica];"]
    for service in mesh.services:
        edge = " (edge)" if service.edge else ""
        label = f"{service.name}{edge}\\n{service.protocol}"
        lines.append(f"  {_node_id('svc', service.name)} [shape=box, label={_dot_quote(label)}];")
        for version in service.versions:
            label = f"{service.name} {version.name}\\n{len(version.instances)} instance(s)"
            lines.append(f"  {_node_id('ver', service.name, version.name)} [shape=ellipse, label={_dot_quote(label)}];")
    for external in mesh.externals:
        label = f"{external.name}\\n{external.address}:{external.port}"
        lines.append(f"  {_node_id('ext', external.name)} [shape=parallelogram, label={_dot_quote(label)}];")
    for gateway in mesh.gateways:
        label = f"gateway {gateway.name}\\n:{gateway.port}"
        lines.append(f"  {_node_id('gw', gateway.name)} [shape=hexagon, label={_dot_quote(label)}];")
        for route in gateway.routes:
            route_label = f"{route.name}: {', '.join(route.domains)} {route.match.describe()}"
            lines.append(
                f"  {_node_id('gw', gateway.name)} -> {_node_id('svc', route.service)} "
                f"[penwidth=2, label={_dot_quote(route_label)}];"
            )
    for service in mesh.services:
        for dependency in service.dependencies:
            target = _node_id("ext" if dependency.external else "svc", dependency.target)
            lines.append(f"  {_node_id('svc', service.name)} -> {target} [penwidth=2];")
        for source, target, label, dashed in _version_edges(service):
            style = ", style=dashed" if dashed else ""
            lines.append(f"  {source} -> {target} [label={_dot_quote(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
