"""The dependency graph of a mesh, and the worst-case policy numbers along its edges."""

from __future__ import annotations

from dataclasses import dataclass

from meshgen.durations import Duration
from meshgen.model.mesh import Mesh, Retries, Timeout, longest


@dataclass(frozen=True)
class Edge:
    """A caller's view of one dependency: the worst its routes allow."""

    caller: str
    callee: str
    attempts: int  # most attempts any route to the callee makes
    timeout: Timeout  # longest route timeout towards the callee (None: some route has none)
    per_try_timeout: Duration | None  # longest per-try limit, None if some try is unbounded


def _edge_policies(mesh: Mesh, target: str) -> list[tuple[Timeout, Retries]]:
    if any(e.name == target for e in mesh.externals):
        external = mesh.external(target)
        return [(external.timeout, external.retries)]
    return [(route.timeout, route.retries) for route in mesh.service(target).routes]


def _edge(mesh: Mesh, caller: str, target: str) -> Edge:
    policies = _edge_policies(mesh, target)
    # A per-try limit only exists where Envoy gets a retry policy, i.e. with retries.
    per_try = [r.per_try_timeout if r.attempts > 1 else None for _, r in policies]
    return Edge(
        caller=caller,
        callee=target,
        attempts=max(r.attempts for _, r in policies),
        timeout=longest(t for t, _ in policies),
        per_try_timeout=None if any(p is None for p in per_try) else max(p for p in per_try if p),
    )


def edges(mesh: Mesh) -> list[Edge]:
    """Every service's calls, then every gateway's (a gateway applies its targets' routes, so the
    same policies): a gateway is a caller like any other, the first one on the way in."""
    result = [_edge(mesh, s.name, d.target) for s in mesh.services for d in s.dependencies]
    result += [_edge(mesh, g.name, target) for g in mesh.gateways for target in g.targets]
    return result


def adjacency(mesh: Mesh) -> dict[str, list[Edge]]:
    graph: dict[str, list[Edge]] = {s.name: [] for s in mesh.services}
    graph.update({g.name: [] for g in mesh.gateways})
    for edge in edges(mesh):
        graph[edge.caller].append(edge)
    return graph


def cycles(mesh: Mesh) -> list[list[str]]:
    """One cycle per group of services that call each other in a loop, as a path from the
    group's smallest name back to itself (the group's other members may lie on other loops)."""
    graph = {s.name: sorted(d.target for d in s.dependencies if not d.external) for s in mesh.services}
    result = []
    for component in _strongly_connected(graph):
        start = min(component)
        if len(component) == 1 and start not in graph[start]:
            continue
        result.append(_shortest_loop(graph, start, component))
    return sorted(result)


def _strongly_connected(graph: dict[str, list[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative so deep chains cannot exhaust the stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _shortest_loop(graph: dict[str, list[str]], start: str, component: set[str]) -> list[str]:
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in graph[node]:
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if nxt in component and nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError("a strongly connected component always loops back")


def reachable(mesh: Mesh, roots: list[str]) -> set[str]:
    graph = {s.name: [d.target for d in s.dependencies] for s in mesh.services}
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(graph.get(node, []))
    return seen
