"""Every number and duration is bounded like the Envoy field it becomes, so `validate` catches
what Envoy (or the JSON writer) would refuse, at the field's line, with exit 2.

The bounds are Envoy 1.40's: uint32 for circuit-breaker thresholds, outlier and health-check
counts and token buckets; int64 > 0 for the overload manager's connection limit; durations at
most 9223372035.999 s (Envoy turns every duration into int64 nanoseconds and refuses more
whole seconds than fit, far below google.protobuf.Duration's own 315576000000 s), and greater
than 0 where Envoy's validate rules say `gt {}`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.durations import MAX_DURATION
from meshgen.model import load_mesh
from meshgen.render.envoy.check import check_with_envoy
from tests.test_catalog_errors import MARK, Case, assert_problem, catalog, listing, marked_line, problems_of, write

UINT32_MAX = 2**32 - 1
TOO_LONG = "9223372036s"  # one second past the longest duration Envoy takes
U32 = "less than or equal to 4294967295"
AT_MOST = "must be at most 9223372035.999s"
ABOVE_ZERO = "must be greater than 0"


def users(field: str) -> str:
    """A field added to the `users` service, marked as the line the problem must be on."""
    return f"    {field}  {MARK}\n"


def mesh(field: str) -> tuple[str, str]:
    return ("  name: test", f"  name: test\n  {field}  {MARK}")


OVER_THE_TOP = [
    # -- integers ------------------------------------------------------------------------------
    Case("max-requests-20-digits", catalog(append=users("circuit_breaker: {max_requests: 100000000000000000000}")),
         "services.users.circuit_breaker.max_requests", U32),
    Case("max-requests-2**32", catalog(append=users("circuit_breaker: {max_requests: 4294967296}")),
         "services.users.circuit_breaker.max_requests", U32),
    Case("max-connections", catalog(append=users("circuit_breaker: {max_connections: 4294967296}")),
         "services.users.circuit_breaker.max_connections", U32),
    Case("max-pending-requests", catalog(append=users("circuit_breaker: {max_pending_requests: 4294967296}")),
         "services.users.circuit_breaker.max_pending_requests", U32),
    Case("max-retries", catalog(append=users("circuit_breaker: {max_retries: 4294967296}")),
         "services.users.circuit_breaker.max_retries", U32),
    Case("consecutive-5xx", catalog(append=users("circuit_breaker: {consecutive_5xx: 4294967296}")),
         "services.users.circuit_breaker.consecutive_5xx", U32),
    Case("unhealthy-threshold", catalog(append=users("health_check: {unhealthy_threshold: 4294967296}")),
         "services.users.health_check.unhealthy_threshold", U32),
    Case("healthy-threshold", catalog(append=users("health_check: {healthy_threshold: 4294967296}")),
         "services.users.health_check.healthy_threshold", U32),
    Case("rate-limit-requests", catalog(append=users("rate_limit: {requests: 4294967296, per: 1s}")),
         "services.users.rate_limit.requests", U32),
    Case("rate-limit-burst", catalog(append=users("rate_limit: {requests: 1, per: 1s, burst: 4294967296}")),
         "services.users.rate_limit.burst", U32),
    Case("max-downstream-connections", catalog(mesh("sidecar: {max_downstream_connections: 9223372036854775808}")),
         "mesh.sidecar.max_downstream_connections", "less than or equal to 9223372036854775807"),
    # -- durations too long --------------------------------------------------------------------
    Case("connect-timeout-10**18-s", catalog(append=users("connect_timeout: 1000000000000000000s")),
         "services.users.connect_timeout", AT_MOST),
    Case("fault-delay-2**63-ms", catalog(append="    routes:\n      - to: {v1: 100}\n        fault: {delay: {duration: 9223372036854775808ms}}  " + MARK + "\n"),
         "services.users.routes[0].fault.delay.duration", AT_MOST),
    Case("timeout-400-digits", catalog(append=users("timeout: " + "9" * 400 + "s")),
         "services.users.timeout", AT_MOST),
    Case("timeout", catalog(append=users(f"timeout: {TOO_LONG}")), "services.users.timeout", AT_MOST),
    Case("timeout-in-hours", catalog(append=users("timeout: 2562048h")), "services.users.timeout", AT_MOST),
    Case("per-try-timeout", catalog(append=users(f"retries: {{per_try_timeout: {TOO_LONG}}}")),
         "services.users.retries.per_try_timeout", AT_MOST),
    Case("backoff-max", catalog(append=users(f"retries: {{backoff: {{base: 1s, max: {TOO_LONG}}}}}")),
         "services.users.retries.backoff.max", AT_MOST),
    Case("outlier-interval", catalog(append=users(f"circuit_breaker: {{interval: {TOO_LONG}}}")),
         "services.users.circuit_breaker.interval", AT_MOST),
    Case("health-check-interval", catalog(append=users(f"health_check: {{interval: {TOO_LONG}}}")),
         "services.users.health_check.interval", AT_MOST),
    Case("rate-limit-per", catalog(append=users(f"rate_limit: {{requests: 1, per: {TOO_LONG}}}")),
         "services.users.rate_limit.per", AT_MOST),
    Case("mesh-default-timeout", catalog(mesh(f"defaults: {{timeout: {TOO_LONG}}}")),
         "mesh.defaults.timeout", AT_MOST),
    # -- durations Envoy wants greater than zero -----------------------------------------------
    Case("connect-timeout-zero", catalog(append=users("connect_timeout: 0s")),
         "services.users.connect_timeout", ABOVE_ZERO),
    Case("mesh-default-connect-timeout-zero", catalog(mesh("defaults: {connect_timeout: 0ms}")),
         "mesh.defaults.connect_timeout", ABOVE_ZERO),
    Case("external-connect-timeout-zero", catalog(append="external:\n  pay: {address: 192.0.2.1, port: 443, connect_timeout: 0s}  " + MARK + "\n"),
         "external.pay.connect_timeout", ABOVE_ZERO),
    Case("backoff-base-zero", catalog(append=users("retries: {backoff: {base: 0s}}")),
         "services.users.retries.backoff.base", ABOVE_ZERO),
    Case("outlier-interval-zero", catalog(append=users("circuit_breaker: {interval: 0s}")),
         "services.users.circuit_breaker.interval", ABOVE_ZERO),
    Case("ejection-time-zero", catalog(append=users("circuit_breaker: {ejection_time: 0s}")),
         "services.users.circuit_breaker.ejection_time", ABOVE_ZERO),
    Case("health-check-interval-zero", catalog(append=users("health_check: {interval: 0s}")),
         "services.users.health_check.interval", ABOVE_ZERO),
    Case("health-check-timeout-zero", catalog(append=users("health_check: {timeout: 0s}")),
         "services.users.health_check.timeout", ABOVE_ZERO),
    Case("fault-delay-zero", catalog(append="    routes:\n      - to: {v1: 100}\n        fault: {delay: {duration: 0s}}  " + MARK + "\n"),
         "services.users.routes[0].fault.delay.duration", ABOVE_ZERO),
]  # fmt: skip


@pytest.mark.parametrize("case", OVER_THE_TOP, ids=[c.id for c in OVER_THE_TOP])
def test_values_envoy_refuses_are_reported_at_their_field(tmp_path: Path, case: Case) -> None:
    path = write(tmp_path, case.text)
    problems = problems_of(path)
    assert_problem(problems, path=case.path, fragment=case.message, file=path, line=marked_line(case.text))
    assert len(problems) == case.count, listing(problems)


@pytest.mark.parametrize("value", ["100000000000000000000", "4294967296"])
def test_generate_refuses_a_threshold_envoy_cannot_take(tmp_path: Path, value: str) -> None:
    """Once `validate` passed this and `generate` crashed ("Integer exceeds 64-bit range") or
    wrote a config the real Envoy refuses."""
    file = write(tmp_path, catalog(append=f"    circuit_breaker: {{max_requests: {value}}}\n"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(file), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert f"services.users.circuit_breaker.max_requests: Input should be {U32}" in result.stderr
    assert not out.exists()


# Every bounded field at its largest value, durations Envoy allows to be zero at zero.
AT_THE_LIMITS = catalog(
    (
        "  name: test",
        "  name: test\n"
        "  sidecar: {max_downstream_connections: 9223372036854775807}\n"
        "  defaults: {timeout: 0s, connect_timeout: 9223372035.999s}",
    ),
    (
        "    dependencies: [users]",
        "    dependencies: [{service: users, rate_limit: {requests: 4294967295, per: 50ms}}]",
    ),
    append="    circuit_breaker: {max_connections: 4294967295, max_pending_requests: 4294967295,\n"
    "                      max_requests: 4294967295, max_retries: 4294967295, consecutive_5xx: 4294967295,\n"
    "                      interval: 9223372035.999s, ejection_time: 2562047h}\n"
    "    health_check: {interval: 9223372035s, timeout: 1ms, unhealthy_threshold: 4294967295,\n"
    "                   healthy_threshold: 4294967295}\n"
    "    rate_limit: {requests: 4294967295, per: 9223372035.999s, burst: 4294967295}\n"
    "    routes:\n"
    "      - to: {v1: 100}\n"
    "        timeout: 9223372035.999s\n"
    "        retries: {attempts: 20, per_try_timeout: 0s, backoff: {base: 9223372035.999s}}\n"
    "        fault: {delay: {duration: 9223372035999ms, percent: 100}, abort: {status: 599, percent: 100}}\n"
    "      - to: {v2: 100}\n"
    "        retries: {attempts: 2, per_try_timeout: 9223372035.999s, backoff: {base: 1ms, max: 9223372035.999s}}\n",
)


def test_values_at_the_limits_are_valid(tmp_path: Path) -> None:
    mesh = load_mesh(write(tmp_path, AT_THE_LIMITS))
    users = mesh.service("users")
    assert users.circuit_breaker.max_requests == UINT32_MAX
    assert users.routes[0].timeout == MAX_DURATION
    assert users.routes[1].timeout is None  # 0s: no timeout, as Envoy reads it
    # A back-off `max` left out is ten times `base`, but never longer than Envoy takes.
    assert users.routes[0].retries.backoff_max == MAX_DURATION


@pytest.mark.envoy
def test_values_at_the_limits_are_accepted_by_envoy(tmp_path: Path) -> None:
    check_with_envoy(load_mesh(write(tmp_path, AT_THE_LIMITS)))


def test_schema_states_every_bound() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    definitions = json.loads(result.stdout)["$defs"]

    def field(model: str, name: str) -> dict[str, object]:
        schema = definitions[model]["properties"][name]
        return dict(schema.get("anyOf", [schema])[0])

    for model, name in [
        ("CircuitBreaker", "max_connections"),
        ("CircuitBreaker", "max_pending_requests"),
        ("CircuitBreaker", "max_requests"),
        ("CircuitBreaker", "max_retries"),
        ("CircuitBreaker", "consecutive_5xx"),
        ("HealthCheck", "unhealthy_threshold"),
        ("HealthCheck", "healthy_threshold"),
        ("RateLimit", "requests"),
        ("RateLimit", "burst"),
    ]:
        assert field(model, name)["maximum"] == UINT32_MAX, (model, name)
        assert field(model, name)["minimum"] in (0, 1), (model, name)
    assert field("Sidecar", "max_downstream_connections")["maximum"] == 2**63 - 1
    for model, name in [("Defaults", "timeout"), ("Retries", "per_try_timeout"), ("Route", "timeout")]:
        description = str(field(model, name)["description"])
        assert "at most 9223372035.999s" in description and "greater than 0" not in description, (model, name)
    for model, name in [
        ("Defaults", "connect_timeout"),
        ("Backoff", "base"),
        ("CircuitBreaker", "interval"),
        ("HealthCheck", "timeout"),
        ("Delay", "duration"),
        ("RateLimit", "per"),
    ]:
        description = str(field(model, name)["description"])
        assert "greater than 0" in description and "at most 9223372035.999s" in description, (model, name)
