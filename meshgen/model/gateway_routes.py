"""A service's routes as a gateway applies them: a gateway route picks requests (Host, path,
headers, methods) and a service; that service's own routes (versions, weights, retries, timeouts,
faults, mirroring) then apply to them, as they would to a call from inside the mesh. Each of the
service's routes becomes one gateway route whose match is both matches at once, in the service's
order; routes no request within the gateway's match can reach are left out."""

from __future__ import annotations

import dataclasses

from meshgen.model.mesh import GatewayRoute, HeaderMatch, Match, Route, Service


def compose(route: GatewayRoute, service: Service, gateway_name: str) -> tuple[Route, ...]:
    """`service`'s routes that apply to the gateway, each with the gateway route's match folded in."""
    found = []
    for own in service.routes:
        if not own.match.applies_to(gateway_name):
            continue
        both = _both(route.match, own.match)
        if both is not None:
            found.append(dataclasses.replace(own, match=both))
    return tuple(found)


def _both(outer: Match, inner: Match) -> Match | None:
    """A match that takes exactly the requests both take, or None when no request can."""
    paths = _paths(outer, inner)
    if paths is None:
        return None
    headers = _headers(outer.headers, inner.headers)
    if headers is None:
        return None
    if outer.methods and inner.methods:
        methods = tuple(m for m in inner.methods if m in outer.methods)
        if not methods:
            return None
    else:
        methods = outer.methods or inner.methods
    prefix, path = paths
    return Match(prefix=prefix, path=path, headers=headers, methods=methods)


def _paths(outer: Match, inner: Match) -> tuple[str | None, str | None] | None:
    """(prefix, path) of requests both take: a path beats a prefix it starts with, the longer of
    two prefixes wins when one starts with the other."""
    if outer.path is not None and inner.path is not None:
        return (None, outer.path) if outer.path == inner.path else None
    if outer.path is not None or inner.path is not None:
        exact = outer.path if outer.path is not None else inner.path
        prefix = (inner if outer.path is not None else outer).prefix or "/"
        assert exact is not None
        return (None, exact) if exact.startswith(prefix) else None
    first, second = outer.prefix or "/", inner.prefix or "/"
    if second.startswith(first):
        return second, None
    if first.startswith(second):
        return first, None
    return None


def _headers(outer: tuple[HeaderMatch, ...], inner: tuple[HeaderMatch, ...]) -> tuple[HeaderMatch, ...] | None:
    """Both sets of conditions (Envoy requires every one); None when two exact values clash."""
    exact = {h.name.lower(): h.exact for h in outer if h.exact is not None}
    for header in inner:
        value = exact.get(header.name.lower())
        if value is not None and header.exact is not None and header.exact != value:
            return None
    combined = list(outer)
    combined += [h for h in inner if h not in outer]
    return tuple(combined)
