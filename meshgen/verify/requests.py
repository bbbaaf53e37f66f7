"""Building a request that a given route matches and no earlier route does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from meshgen.model.mesh import IDEMPOTENT_METHODS, HeaderMatch, Match, Route


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    headers: dict[str, str]


class NoProbe(Exception):
    """No request can be built that exercises the route; the reason says why."""


def _sample(header: HeaderMatch) -> str | None:
    """A value the header matcher accepts, or None for 'leave the header out'."""
    if header.exact is not None:
        return header.exact
    if header.prefix is not None:
        return header.prefix + "verify"
    if header.regex is not None:
        pattern = re.compile(header.regex)
        plain = header.regex.strip("^$")
        for candidate in [plain, *plain.strip("()").split("|")]:
            if pattern.fullmatch(candidate):
                return candidate
        raise NoProbe(f"no sample value found for header {header.name} ~ {header.regex}")
    return "1" if header.present is not False else None


def header_matches(header: HeaderMatch, headers: dict[str, str]) -> bool:
    value = headers.get(header.name)
    if header.present is not None:
        return (value is not None) == header.present
    if value is None:
        return False
    if header.exact is not None:
        return value == header.exact
    if header.prefix is not None:
        return value.startswith(header.prefix)
    return header.regex is not None and re.fullmatch(header.regex, value) is not None


def matches(match: Match, probe: Probe) -> bool:
    """Envoy's route match, as meshgen renders it."""
    path = probe.path.split("?", 1)[0]
    if match.path is not None and path != match.path:
        return False
    if match.path is None and not path.startswith(match.prefix or "/"):
        return False
    if match.methods and probe.method not in match.methods:
        return False
    return all(header_matches(h, probe.headers) for h in match.headers)


def probe_for(route: Route, earlier: tuple[Route, ...], extra: dict[str, str] | None = None) -> Probe:
    """A request `route` matches and no route in `earlier` does."""
    match = route.match
    methods = match.methods or ("GET",)
    # Prefer an idempotent method, so a route's retries apply as they would for a GET.
    method = next((m for m in methods if m in IDEMPOTENT_METHODS), methods[0])
    path = match.path if match.path is not None else (match.prefix or "/")
    headers = {}
    for header in match.headers:
        value = _sample(header)
        if value is not None:
            headers[header.name] = value
    probe = Probe(method, path, {**headers, **(extra or {})})
    if not matches(match, probe):
        raise NoProbe("the request built for it does not match it")
    shadow = next((r for r in earlier if matches(r.match, probe)), None)
    if shadow is not None:
        raise NoProbe(f"route {shadow.name!r} before it matches the same requests")
    return probe
