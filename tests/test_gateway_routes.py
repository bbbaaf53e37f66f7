"""A gateway route folded into a service's routes: a request takes the folded route exactly when
it takes both the gateway's match and the service route's (Envoy's own matching, as verify models
it), and the service's order is kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshgen.durations import Duration
from meshgen.model.gateway_routes import compose
from meshgen.model.mesh import (
    CircuitBreaker,
    GatewayRoute,
    HeaderMatch,
    Match,
    Retries,
    Route,
    Service,
)
from meshgen.verify.requests import Probe, matches

PATHS = ["/", "/a", "/a/b", "/ab", "/b"]
HEADERS = [HeaderMatch("x-a", exact="1"), HeaderMatch("x-a", exact="2"), HeaderMatch("x-b", present=True)]
METHODS = ["GET", "POST"]


@st.composite
def a_match(draw: st.DrawFn) -> Match:
    exact = draw(st.booleans())
    where = draw(st.sampled_from(PATHS))
    return Match(
        prefix=None if exact else where,
        path=where if exact else None,
        headers=tuple(draw(st.lists(st.sampled_from(HEADERS), max_size=2, unique=True))),
        methods=tuple(draw(st.lists(st.sampled_from(METHODS), max_size=2, unique=True))),
    )


@st.composite
def a_request(draw: st.DrawFn) -> Probe:
    headers = {}
    if draw(st.booleans()):
        headers["x-a"] = draw(st.sampled_from(["1", "2"]))
    if draw(st.booleans()):
        headers["x-b"] = "yes"
    return Probe(draw(st.sampled_from(METHODS)), draw(st.sampled_from([*PATHS, "/a/c", "/bb"])), headers)


def service_with(*matches_: Match) -> Service:
    retries = Retries(1, (), (), None, Duration(25), Duration(250), "idempotent", True)
    routes = tuple(
        Route(name=f"r{i}", match=m, weights=(("v1", 1),), timeout=Duration(1000), retries=retries)
        for i, m in enumerate(matches_)
    )
    return Service(
        name="s",
        protocol="http",
        port=8080,
        edge=False,
        versions=(),
        dependencies=(),
        routes=routes,
        timeout=Duration(1000),
        connect_timeout=Duration(1000),
        circuit_breaker=CircuitBreaker(1, 1, 1, 1, 5, Duration(1000), Duration(1000), 50),
        health_check=None,
        rate_limit=None,
    )


@settings(max_examples=400, deadline=None)
@given(a_match(), a_match(), st.lists(a_request(), min_size=1, max_size=8))
def test_folded_route_takes_exactly_what_both_take(outer: Match, inner: Match, requests: list[Probe]) -> None:
    folded = compose(GatewayRoute("g", ("*",), outer, "s"), service_with(inner), "gw")
    for request in requests:
        both = matches(outer, request) and matches(inner, request)
        taken = bool(folded) and matches(folded[0].match, request)
        assert taken == both, (outer, inner, request, folded)


def test_routes_keep_their_order_and_unreachable_ones_go() -> None:
    service = service_with(Match(prefix="/admin"), Match(prefix="/api"), Match(prefix="/"))
    folded = compose(GatewayRoute("g", ("*",), Match(prefix="/api/v2"), "s"), service, "gw")
    assert [(r.name, r.match.prefix) for r in folded] == [("r1", "/api/v2"), ("r2", "/api/v2")]


def test_routes_for_some_callers_apply_when_the_gateway_is_one() -> None:
    own = Match(prefix="/", callers=("gw",))
    service = service_with(own, Match(prefix="/"))
    assert [r.name for r in compose(GatewayRoute("g", ("*",), Match(), "s"), service, "gw")] == ["r0", "r1"]
    assert [r.name for r in compose(GatewayRoute("g", ("*",), Match(), "s"), service, "other")] == ["r1"]
