"""Every way a catalog can be wrong gives a precise error: field path, message, file and line.

Each case is a small valid catalog (BASE) changed in one place and written to disk as YAML
text. The line a problem must be reported on is marked by hand in that text with `# <-`, so
the expected lines come from the YAML as written, never from re-dumping data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.errors import CatalogError, Problem
from meshgen.model import load_mesh

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(REPO.glob("examples/*/catalog.yaml"))
MARK = "# <-"

# `users` comes last (line 14), so text appended with four spaces of indent adds fields to it.
BASE = """\
mesh:
  name: test
hosts:
  web-1: {address: 127.0.30.1}
  users-1: {address: 127.0.30.2}
  users-2: {address: 127.0.30.3}
services:
  web:
    port: 8080
    edge: true
    versions:
      v1: {instances: [web-1]}
    dependencies: [users]
  users:
    port: 8080
    versions:
      v1: {instances: [users-1]}
      v2: {instances: [users-2]}
"""

# The same catalog with each service on one line, for tests of directory merging where the
# line of a whole service matters.
FLOW_BASE = """\
mesh: {name: test}
hosts:
  web-1: {address: 127.0.30.1}
  users-1: {address: 127.0.30.2}
  users-2: {address: 127.0.30.3}
services:
  web: {port: 8080, edge: true, versions: {v1: {instances: [web-1]}}, dependencies: [users]}
  users: {port: 8080, versions: {v1: {instances: [users-1]}, v2: {instances: [users-2]}}}
"""

USERS_ROUTES = """\
    routes:
      - {name: canary, match: {headers: {x-canary: "true"}}, to: {v2: 100}}
      - name: split
        to: {v1: 90, v2: 10}
"""


def catalog(*replacements: tuple[str, str], append: str = "") -> str:
    """BASE with each `old` replaced by `new` (each `old` must occur exactly once), then `append`."""
    text = BASE
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} must occur exactly once in the base catalog"
        text = text.replace(old, new)
    return text + append


def marked_line(text: str) -> int:
    """The 1-based line of the text marked `# <-`; there must be exactly one."""
    lines = [number for number, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith(MARK)]
    assert len(lines) == 1, f"expected exactly one {MARK!r} marker, found lines {lines}"
    return lines[0]


def write(directory: Path, text: str, name: str = "catalog.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(CatalogError) as caught:
        load_mesh(path)
    return caught.value.problems


def listing(problems: Sequence[Problem]) -> str:
    return "\n".join(f"  {p!r}" for p in problems)


def find(problems: Sequence[Problem], path: str, fragment: str) -> Problem:
    """The one problem at `path` whose message contains `fragment`."""
    found = [p for p in problems if p.path == path and fragment in p.message]
    assert len(found) == 1, f"expected one problem at {path!r} containing {fragment!r}, got:\n{listing(problems)}"
    return found[0]


def assert_problem(
    problems: Sequence[Problem], *, path: str, fragment: str, file: Path | str, line: int | None
) -> Problem:
    problem = find(problems, path, fragment)
    assert problem.file == str(file), listing(problems)
    assert problem.line == line, f"{path}: expected line {line}, got {problem.line}\n{listing(problems)}"
    return problem


# --------------------------------------------------------------------------------------------
# One file, one mistake
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    text: str  # the whole catalog, the expected line marked with MARK
    path: str  # expected Problem.path
    message: str  # a fragment of the expected Problem.message
    count: int = 1  # how many problems the catalog has in all


# A gateway on a host of its own (gw-1), appended after the services.
GW_HOST = ("  users-2: {address: 127.0.30.3}", "  users-2: {address: 127.0.30.3}\n  gw-1: {address: 127.0.30.4}")
GATEWAY = "gateways:\n  public:\n    hosts: [gw-1]\n"

CASES = [
    # -- reading YAML --------------------------------------------------------------------------
    Case(
        "invalid-yaml-mapping-value",
        catalog(("  users-1: {address: 127.0.30.2}", "  users-1: address: 127.0.30.2  " + MARK)),
        "",
        "invalid YAML: mapping values are not allowed",
    ),
    Case(
        "invalid-yaml-tab-indent",
        catalog(("    dependencies: [users]", "    dependencies:\n\t- users  " + MARK)),
        "",
        "invalid YAML: found character '\\t' that cannot start any token",
    ),
    Case(
        "key-written-twice",
        catalog(
            (
                "    port: 8080\n    versions:\n      v1: {instances: [users-1]}",
                "    port: 8080\n    port: 9090  " + MARK + "\n    versions:\n      v1: {instances: [users-1]}",
            )
        ),
        "services.users.port",
        "key 'port' is written twice",
    ),
    Case(
        "key-written-twice-in-flow-mapping",
        catalog(
            ("      v2: {instances: [users-2]}", "      v2: {instances: [users-2], instances: [users-1]}  " + MARK)
        ),
        "services.users.versions.v2.instances",
        "key 'instances' is written twice",
    ),
    # -- schema --------------------------------------------------------------------------------
    Case(
        "unknown-top-level-field",
        catalog(append="extras: {owner: team-a}  " + MARK + "\n"),
        "extras",
        "unknown field",
    ),
    Case(
        "unknown-nested-field",
        catalog(append="    retries: {atempts: 3}  " + MARK + "\n"),
        "services.users.retries.atempts",
        "unknown field",
    ),
    Case(
        "port-not-a-number",
        catalog(("  users:\n    port: 8080", "  users:\n    port: abc  " + MARK)),
        "services.users.port",
        "valid integer, unable to parse string as an integer, got 'abc'",
    ),
    Case(
        "port-above-range",
        catalog(("  users:\n    port: 8080", "  users:\n    port: 70000  " + MARK)),
        "services.users.port",
        "less than or equal to 65535, got 70000",
    ),
    Case(
        "port-zero",
        catalog(("  users:\n    port: 8080", "  users:\n    port: 0  " + MARK)),
        "services.users.port",
        "greater than or equal to 1, got 0",
    ),
    Case(
        "instance-port-out-of-range",
        catalog(("      v2: {instances: [users-2]}", "      v2: {instances: [{host: users-2, port: 65536}]}  " + MARK)),
        "services.users.versions.v2.instances[0].port",
        "less than or equal to 65535",
    ),
    Case(
        "bad-duration",
        catalog(append="    timeout: 2 seconds  " + MARK + "\n"),
        "services.users.timeout",
        "expected a duration like 250ms, 2s, 1m or 1h, got '2 seconds'",
    ),
    Case(
        "missing-required-field",
        catalog(append="  orders: {versions: {v1: {instances: [users-1]}}}  " + MARK + "\n"),
        "services.orders.port",
        "required field is missing",
    ),
    Case(
        "version-name-not-lower-case",
        catalog(("      v2: {instances: [users-2]}", "      V2: {instances: [users-2]}  " + MARK)),
        "services.users.versions.V2",
        "should match pattern",
    ),
    Case(
        "local-address-not-loopback",
        catalog(
            ("  users-1: {address: 127.0.30.2}", "  users-1: {address: 127.0.30.2, local_address: 10.0.0.1}  " + MARK)
        ),
        "hosts.users-1.local_address",
        "expected a loopback address (127.0.0.0/8 or ::1), got '10.0.0.1'",
    ),
    Case(
        "host-address-not-an-ip",
        catalog(("  users-1: {address: 127.0.30.2}", "  users-1: {address: users.example}  " + MARK)),
        "hosts.users-1.address",
        "expected an IP address",
    ),
    Case(
        "tracing-collector-not-host-port",
        catalog(("  name: test", "  name: test\n  tracing: {collector: tracing-1}  " + MARK)),
        "mesh.tracing.collector",
        "expected HOST:PORT, got 'tracing-1'",
    ),
    Case(
        "tracing-collector-port-not-a-number",
        catalog(("  name: test", "  name: test\n  tracing: {collector: 'tracing-1:zipkin'}  " + MARK)),
        "mesh.tracing.collector",
        "expected HOST:PORT",
    ),
    Case(
        "tracing-collector-host-not-a-name",
        catalog(("  name: test", "  name: test\n  tracing: {collector: 'bad_host!:9411'}  " + MARK)),
        "mesh.tracing.collector",
        "'bad_host!' is neither a catalog host, an IP address nor a DNS name",
    ),
    Case(
        "retry-on-unknown-condition",
        catalog(append="    retries: {retry_on: [5xx, sometimes]}  " + MARK + "\n"),
        "services.users.retries.retry_on[1]",
        "Input should be '5xx'",
    ),
    Case(
        "retry-on-written-under-both-names",
        catalog(append="    retries: {retry_on: [5xx], on: [reset]}  " + MARK + "\n"),
        "services.users.retries",
        "write retry_on only: `on` is its deprecated name",
    ),
    # -- cross-field checks --------------------------------------------------------------------
    Case(
        "unknown-dependency",
        catalog(("    dependencies: [users]", "    dependencies: [users, billing]  " + MARK)),
        "services.web.dependencies[1].service",
        "unknown dependency 'billing' (services and external: users, web)",
    ),
    Case(
        "duplicate-dependency",
        catalog(("    dependencies: [users]", "    dependencies:\n      - users\n      - users  " + MARK)),
        "services.web.dependencies[1].service",
        "duplicate dependency 'users'",
    ),
    Case(
        "route-to-unknown-version",
        catalog(append=USERS_ROUTES.replace("to: {v1: 90, v2: 10}", "to: {v1: 90, v3: 10}  " + MARK)),
        "services.users.routes[1].to.v3",
        "unknown version 'v3' (versions: v1, v2)",
    ),
    Case(
        "all-weights-zero",  # weights are relative, so any sum does; all zero sends nothing anywhere
        catalog(append=USERS_ROUTES.replace("to: {v1: 90, v2: 10}", "to: {v1: 0, v2: 0}  " + MARK)),
        "services.users.routes[1].to",
        "expected at least one version with a weight above 0",
    ),
    Case(
        "mirror-to-unknown-version",
        catalog(
            append=USERS_ROUTES.replace(
                "        to: {v1: 90, v2: 10}\n",
                "        to: {v1: 90, v2: 10}\n        mirror: {to: v9, percent: 10}  " + MARK + "\n",
            )
        ),
        "services.users.routes[1].mirror.to",
        "unknown version 'v9' (versions: v1, v2)",
    ),
    Case(
        "duplicate-route-name",
        catalog(append=USERS_ROUTES.replace("      - name: split", "      - name: canary  " + MARK)),
        "services.users.routes[1].name",
        "duplicate route name 'canary' (also routes[0])",
    ),
    Case(
        "instance-on-unknown-host",
        catalog(("      v2: {instances: [users-2]}", "      v2: {instances: [users-9]}  " + MARK)),
        "services.users.versions.v2.instances[0].host",
        "unknown host 'users-9' (hosts: users-1, users-2, web-1)",
    ),
    Case(
        "same-instance-twice",
        catalog(("      v2: {instances: [users-2]}", "      v2: {instances: [users-2, users-2]}  " + MARK)),
        "services.users.versions.v2.instances[1]",
        "duplicate instance: users v2 is already on host users-2",
        count=5,  # and its four sockets (inbound, app, admin, stats) clash with the first one's
    ),
    Case(
        "two-services-same-app-port-on-one-host",
        catalog(("      v2: {instances: [users-2]}", "      v2: {instances: [web-1]}  " + MARK)),
        "services.users.versions.v2.instances[0]",
        "two listeners on 127.0.30.129:8080: web.v1.web-1 app; users.v2.web-1 app",
        count=4,  # app, inbound, admin and stats ports all clash
    ),
    Case(
        "two-services-same-inbound-port-on-one-host",
        catalog(
            (
                "      v2: {instances: [users-2]}",
                "      v2: {instances: [{host: web-1, port: 9090, admin_port: 15100, stats_port: 15190}]}  " + MARK,
            )
        ),
        "services.users.versions.v2.instances[0]",
        "two listeners on 127.0.30.1:15006: web.v1.web-1 inbound listener; users.v2.web-1 inbound listener",
    ),
    Case(
        "two-instances-same-stats-port-on-one-host",
        catalog(
            (
                "      v2: {instances: [users-2]}",
                "      v2: {instances: [{host: web-1, port: 9090, inbound_port: 15106, admin_port: 15100}]}  " + MARK,
            )
        ),
        "services.users.versions.v2.instances[0]",
        "two listeners on 127.0.30.1:15090: web.v1.web-1 stats listener; users.v2.web-1 stats listener",
    ),
    Case(
        "stats-port-is-the-inbound-port",
        catalog(
            ("      v1: {instances: [web-1]}", "      v1: {instances: [{host: web-1, stats_port: 15006}]}  " + MARK)
        ),
        "services.web.versions.v1.instances[0]",
        "two listeners on 127.0.30.1:15006: web.v1.web-1 inbound listener; web.v1.web-1 stats listener",
    ),
    Case(
        "prometheus-not-host-port",
        catalog(("  name: test", "  name: test\n  metrics: {prometheus: prom-1}  " + MARK)),
        "mesh.metrics.prometheus",
        "expected HOST:PORT, got 'prom-1'",
    ),
    Case(
        "prometheus-host-not-a-name",
        catalog(("  name: test", "  name: test\n  metrics: {prometheus: 'bad_host!:9091'}  " + MARK)),
        "mesh.metrics.prometheus",
        "'bad_host!' is neither a catalog host, an IP address nor a DNS name",
    ),
    Case(
        "prometheus-on-a-sidecar-port",
        catalog(("  name: test", "  name: test\n  metrics: {prometheus: 'web-1:15090'}  " + MARK)),
        "mesh.metrics.prometheus",
        "two listeners on 127.0.30.1:15090: web.v1.web-1 stats listener; prometheus",
    ),
    Case(
        "two-hosts-same-address",
        catalog(
            ("  users-2: {address: 127.0.30.3}", "  users-2: {address: 127.0.30.2}"),
            ("      v2: {instances: [users-2]}", "      v2: {instances: [users-2]}  " + MARK),
        ),
        "services.users.versions.v2.instances[0]",
        "two listeners on 127.0.30.130:8080: users.v1.users-1 app; users.v2.users-2 app",
        count=4,
    ),
    Case(
        "service-and-external-same-name",
        catalog(append="external:\n  users: {address: api.example.com, port: 443}  " + MARK + "\n"),
        "external.users",
        "duplicate name: 'users' is also a service",
    ),
    Case(
        "external-address-not-a-name",
        catalog(append="external:\n  pay: {address: 'api example', port: 443}  " + MARK + "\n"),
        "external.pay.address",
        "expected a DNS name or IP address, got 'api example'",
    ),
    Case(
        "tcp-service-with-header-route",
        catalog(
            ("  users:\n    port: 8080", "  users:\n    port: 5432\n    protocol: tcp"),
            append="    routes:\n      - match: {headers: {x-canary: 'true'}}  " + MARK + "\n        to: {v2: 100}\n",
        ),
        "services.users.routes[0].match",
        "tcp routes cannot match on paths or headers",
    ),
    Case(
        "tcp-service-with-retries",
        catalog(
            ("  users:\n    port: 8080", "  users:\n    port: 5432\n    protocol: tcp"),
            append="    retries: {attempts: 2}  " + MARK + "\n",
        ),
        "services.users.retries",
        "not available for protocol tcp",
    ),
    Case(
        "local-port-taken-by-the-app",  # an HTTP dependency may have a port of its own, not the app's
        catalog(
            ("    dependencies: [users]", "    dependencies:\n      - {service: users, local_port: 8080}  " + MARK)
        ),
        "services.web.dependencies[0].local_port",
        "two listeners on 127.0.30.129:8080: web.v1.web-1 app; web.v1.web-1 http listener for users",
    ),
    Case(
        "dependency-address-off-loopback",
        catalog(
            ("    dependencies: [users]", "    dependencies:\n      - {service: users, address: 10.0.0.9}  " + MARK)
        ),
        "services.web.dependencies[0].address",
        "expected a loopback address (127.0.0.0/8 or ::1)",
    ),
    Case(
        "dependency-address-is-a-host-address",
        catalog(
            ("    dependencies: [users]", "    dependencies:\n      - {service: users, address: 127.0.30.2}  " + MARK)
        ),
        "services.web.dependencies[0].address",
        "127.0.30.2 is the mesh address of host users-1",
    ),
    Case(
        "hosts-file-gives-a-name-two-addresses",
        catalog(
            ("  web-1: {address: 127.0.30.1}", "  web-1: {address: 127.0.30.1, hosts_file: true}  " + MARK),
            ("    dependencies: [users]", "    dependencies:\n      - {service: users, address: 127.0.30.201}"),
            append="  audit:\n    port: 8090\n"
            "    versions: {v1: {instances: [{host: web-1, inbound_port: 15106, admin_port: 15100, "
            "outbound_port: 15101, stats_port: 15190}]}}\n"
            "    dependencies: [{service: users, address: 127.0.30.202}]\n",
        ),
        "hosts.web-1.hosts_file",
        "the hosts file would give users two addresses (127.0.30.201, 127.0.30.202)",
        count=2,
    ),
    Case(
        "workdir-without-command",
        catalog(("      v1: {instances: [web-1]}", "      v1: {instances: [{host: web-1, workdir: /srv}]}  " + MARK)),
        "services.web.versions.v1.instances[0].workdir",
        "a working directory is for a `command`",
    ),
    Case(
        "gateway-routes-to-an-unknown-service",
        catalog(GW_HOST, append=GATEWAY + "    routes: [{service: billing}]  " + MARK + "\n"),
        "gateways.public.routes[0].service",
        "unknown service 'billing'",
    ),
    Case(
        "gateway-on-an-unknown-host",
        catalog(append="gateways:\n  public:\n    hosts: [gw-9]  " + MARK + "\n    routes: [{service: web}]\n"),
        "gateways.public.hosts[0]",
        "unknown host 'gw-9'",
    ),
    Case(
        "gateway-named-like-a-service",
        catalog(GW_HOST, append="gateways:\n  web:  " + MARK + "\n    hosts: [gw-1]\n    routes: [{service: users}]\n"),
        "gateways.web",
        "duplicate name: 'web' is also a service",
    ),
    Case(
        "gateway-listener-taken",
        catalog(
            append="gateways:\n  public:\n    hosts: [web-1]  " + MARK + "\n    port: 15006\n    admin_port: 15100\n"
            "    stats_port: 15190\n"
            "    routes: [{service: web}]\n"
        ),
        "gateways.public.hosts[0]",
        "two listeners on 127.0.30.1:15006: web.v1.web-1 inbound listener; public.gateway.web-1 gateway http listener",
    ),
    Case(
        "gateway-route-no-service-route-can-match",
        catalog(
            GW_HOST,
            (
                "      v2: {instances: [users-2]}",
                "      v2: {instances: [users-2]}\n    routes: [{name: api, match: {prefix: /api}, to: {v1: 1}}]",
            ),
            append=GATEWAY + "    routes: [{service: users, match: {prefix: /admin}}]  " + MARK + "\n",
        ),
        "gateways.public.routes[0].match",
        "none of users's routes can match a request within prefix /admin",
    ),
    Case(
        "gateway-tls-key-without-cert",
        catalog(
            GW_HOST, append=GATEWAY + "    tls: {port: 9443, key: k.pem}  " + MARK + "\n    routes: [{service: web}]\n"
        ),
        "gateways.public.tls",
        "give both cert and key, or neither",
    ),
    Case(
        "rate-limit-interval-too-short",
        catalog(append="    rate_limit: {requests: 100, per: 10ms}  " + MARK + "\n"),
        "services.users.rate_limit.per",
        "must be at least 50ms, got 10ms",
    ),
    Case(
        "dependency-rate-limit-interval-too-short",
        catalog(
            (
                "    dependencies: [users]",
                "    dependencies:\n      - service: users\n        rate_limit: {requests: 5, per: 10ms}  " + MARK,
            )
        ),
        "services.web.dependencies[0].rate_limit.per",
        "must be at least 50ms, got 10ms",
    ),
    Case(
        "backoff-max-below-base",
        catalog(append="    retries: {backoff: {base: 1s, max: 100ms}}  " + MARK + "\n"),
        "services.users.retries.backoff.max",
        "must be at least backoff.base (1s), got 100ms",
    ),
    Case(
        "backoff-max-below-base-on-a-route",
        catalog(append=USERS_ROUTES + "        retries: {backoff: {base: 1s, max: 100ms}}  " + MARK + "\n"),
        "services.users.routes[1].retries.backoff.max",
        "must be at least backoff.base (1s), got 100ms",
    ),
    # One mistake is one problem, however many routes inherit it.
    Case(
        "backoff-max-below-base-inherited-by-two-routes",
        catalog(append="    retries: {backoff: {base: 1s, max: 100ms}}  " + MARK + "\n" + USERS_ROUTES),
        "services.users.retries.backoff.max",
        "must be at least backoff.base (1s), got 100ms",
    ),
    Case(
        "backoff-max-below-base-in-mesh-defaults",
        catalog(
            ("  name: test", "  name: test\n  defaults:\n    retries:\n      backoff: {base: 1s, max: 100ms}  " + MARK)
        ),
        "mesh.defaults.retries.backoff.max",
        "must be at least backoff.base (1s), got 100ms",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_mistake_is_reported_at_its_field_and_line(tmp_path: Path, case: Case) -> None:
    path = write(tmp_path, case.text)
    problems = problems_of(path)
    assert_problem(problems, path=case.path, fragment=case.message, file=path, line=marked_line(case.text))
    assert len(problems) == case.count, listing(problems)


def test_the_base_catalogs_are_valid(tmp_path: Path) -> None:
    """Every case above differs from a valid catalog only where it is marked."""
    assert BASE.splitlines()[13] == "  users:"
    mesh = load_mesh(write(tmp_path, BASE))
    assert [s.name for s in mesh.services] == ["web", "users"]
    assert len(load_mesh(write(tmp_path, FLOW_BASE, "flow.yaml")).services) == 2
    assert len(load_mesh(write(tmp_path, catalog(append=USERS_ROUTES), "routes.yaml")).service("users").routes) == 2


def test_bad_value_is_quoted_once_in_validator_messages(tmp_path: Path) -> None:
    """Messages from our own validators already quote the bad value; `, got ...` must not repeat it."""
    text = catalog(
        ("  name: test", "  name: test\n  tracing: {collector: tracing-1}"),
        append="    timeout: 2 seconds\n",
    )
    problems = problems_of(write(tmp_path, text))
    duration = find(problems, "services.users.timeout", "expected a duration")
    collector = find(problems, "mesh.tracing.collector", "expected HOST:PORT")
    assert duration.message == "expected a duration like 250ms, 2s, 1m or 1h, got '2 seconds'"
    assert collector.message == "expected HOST:PORT, got 'tracing-1'"


# --------------------------------------------------------------------------------------------
# Fields whose value starts on a later line are located at their key, not at their value
# --------------------------------------------------------------------------------------------

BLOCK_CASES = [
    Case(
        "unknown-top-level-section",
        catalog(append="extras:  " + MARK + "\n  owner: team-a\n"),
        "extras",
        "unknown field",
    ),
    Case(
        "unknown-nested-section",
        catalog(append="    circuit_breakers:  " + MARK + "\n      max_connections: 10\n"),
        "services.users.circuit_breakers",
        "unknown field",
    ),
    Case(
        "missing-field-of-a-block-service",
        catalog(("  users:\n    port: 8080\n", "  users:  " + MARK + "\n")),
        "services.users.port",
        "required field is missing",
    ),
    Case(
        "service-and-external-same-name-in-block-style",
        catalog(append="external:\n  users:  " + MARK + "\n    address: api.example.com\n    port: 443\n"),
        "external.users",
        "duplicate name: 'users' is also a service",
    ),
]


@pytest.mark.parametrize("case", BLOCK_CASES, ids=[c.id for c in BLOCK_CASES])
def test_block_style_field_is_reported_at_its_key_line(tmp_path: Path, case: Case) -> None:
    path = write(tmp_path, case.text)
    problems = problems_of(path)
    assert_problem(problems, path=case.path, fragment=case.message, file=path, line=marked_line(case.text))
    assert len(problems) == case.count, listing(problems)


# --------------------------------------------------------------------------------------------
# Valid catalogs the checks above must not reject
# --------------------------------------------------------------------------------------------


def test_on_key_under_retries_is_the_string_on(tmp_path: Path) -> None:
    """YAML 1.1 reads a bare `on` as true; as a key it must stay the field name `on`."""
    text = catalog(
        ("  name: test", "  name: test\n  defaults:\n    retries:\n      on: [connect-failure]"),
        append="    retries: {on: [5xx], attempts: 2}\n",
    )
    mesh = load_mesh(write(tmp_path, text))
    assert mesh.service("users").routes[0].retries.on == ("5xx",)
    assert mesh.service("users").routes[0].retries.attempts == 2
    assert mesh.service("web").routes[0].retries.on == ("connect-failure",)


def test_instances_may_share_a_host_on_distinct_ports(tmp_path: Path) -> None:
    """The control for the listener-conflict cases: distinct ports on one host are fine."""
    text = catalog(
        (
            "      v2: {instances: [users-2]}",
            "      v2: {instances: [{host: web-1, port: 9090, inbound_port: 15106, admin_port: 15100, "
            "stats_port: 15190}]}",
        ),
    )
    mesh = load_mesh(write(tmp_path, text))
    assert {i.host.name for i in mesh.instances} == {"web-1", "users-1"}


def test_hosts_on_separate_machines_may_use_the_same_ports(tmp_path: Path) -> None:
    """Hosts with their own (non-loopback) addresses are separate machines: each has its own
    127.0.0.1, so the same app and admin port on two of them is no conflict."""
    text = catalog(
        ("  web-1: {address: 127.0.30.1}", "  web-1: {address: 10.0.0.1}"),
        ("  users-1: {address: 127.0.30.2}", "  users-1: {address: 10.0.0.2}"),
        ("  users-2: {address: 127.0.30.3}", "  users-2: {address: 10.0.0.3}"),
    )
    mesh = load_mesh(write(tmp_path, text))
    assert {i.host.local_address for i in mesh.instances} == {"127.0.0.1"}


# --------------------------------------------------------------------------------------------
# Several problems are all reported at once
# --------------------------------------------------------------------------------------------


def test_every_cross_field_problem_is_reported(tmp_path: Path) -> None:
    text = catalog(
        ("    dependencies: [users]", "    dependencies: [users, billing]  # 1"),
        ("      v2: {instances: [users-2]}", "      v2: {instances: [users-9]}  # 2"),
        append=USERS_ROUTES.replace("to: {v1: 90, v2: 10}", "to: {v1: 0, v2: 0}  # 3\n        mirror: {to: v9}  # 4"),
    )
    path = write(tmp_path, text)
    lines = {
        tag: number for number, line in enumerate(text.splitlines(), 1) for tag in "1234" if line.endswith(f"# {tag}")
    }
    with pytest.raises(CatalogError) as caught:
        load_mesh(path)
    problems = caught.value.problems
    assert len(problems) == 4, listing(problems)
    assert str(caught.value).splitlines()[0] == "invalid catalog: 4 problems"
    assert_problem(
        problems,
        path="services.web.dependencies[1].service",
        fragment="unknown dependency 'billing'",
        file=path,
        line=lines["1"],
    )
    assert_problem(
        problems,
        path="services.users.versions.v2.instances[0].host",
        fragment="unknown host 'users-9'",
        file=path,
        line=lines["2"],
    )
    assert_problem(
        problems,
        path="services.users.routes[1].to",
        fragment="expected at least one version with a weight above 0",
        file=path,
        line=lines["3"],
    )
    assert_problem(
        problems, path="services.users.routes[1].mirror.to", fragment="unknown version 'v9'", file=path, line=lines["4"]
    )
    # Sorted by position, so the output reads top to bottom.
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)


def test_every_schema_problem_is_reported(tmp_path: Path) -> None:
    text = catalog(
        ("  users-1: {address: 127.0.30.2}", "  users-1: {address: 127.0.30.2, local_address: 10.0.0.1}  # 1"),
        ("  users:\n    port: 8080", "  users:\n    port: abc  # 2"),
        append="    timeout: 2 seconds  # 3\nextras: {owner: team-a}  # 4\n",
    )
    path = write(tmp_path, text)
    lines = {
        tag: number for number, line in enumerate(text.splitlines(), 1) for tag in "1234" if line.endswith(f"# {tag}")
    }
    problems = problems_of(path)
    assert len(problems) == 4, listing(problems)
    assert_problem(problems, path="hosts.users-1.local_address", fragment="loopback", file=path, line=lines["1"])
    assert_problem(problems, path="services.users.port", fragment="valid integer", file=path, line=lines["2"])
    assert_problem(problems, path="services.users.timeout", fragment="expected a duration", file=path, line=lines["3"])
    assert_problem(problems, path="extras", fragment="unknown field", file=path, line=lines["4"])


def test_yaml_problems_in_every_file_are_reported(tmp_path: Path) -> None:
    """Keys written twice are all found, and a syntax error in one file hides nothing in another."""
    a = write(
        tmp_path,
        catalog(
            ("  name: test", "  name: test\n  name: again  # 1"),
            ("    edge: true", "    edge: true\n    edge: false  # 2"),
        ),
        "a.yaml",
    )
    b = write(tmp_path, "services:\n  orders: {port: 8080\n  extra: 1  # 3\n", "b.yaml")
    problems = problems_of(tmp_path)
    assert len(problems) == 3, listing(problems)
    a_lines = {t: n for n, line in enumerate(a.read_text().splitlines(), 1) for t in "12" if line.endswith(f"# {t}")}
    assert_problem(problems, path="mesh.name", fragment="key 'name' is written twice", file=a, line=a_lines["1"])
    assert_problem(
        problems, path="services.web.edge", fragment="key 'edge' is written twice", file=a, line=a_lines["2"]
    )
    assert_problem(problems, path="", fragment="invalid YAML", file=b, line=3)


# --------------------------------------------------------------------------------------------
# Catalog directories, missing and empty catalogs
# --------------------------------------------------------------------------------------------


def test_directory_merges_services_from_every_file(tmp_path: Path) -> None:
    write(tmp_path, FLOW_BASE, "a.yaml")
    write(
        tmp_path,
        "hosts:\n  orders-1: {address: 127.0.30.9}\n"
        "services:\n  orders: {port: 8080, versions: {v1: {instances: [orders-1]}}}\n",
        "b.yml",
    )
    write(tmp_path, "not: [yaml", "notes.txt")  # only *.yaml and *.yml are read
    mesh = load_mesh(tmp_path)
    assert [s.name for s in mesh.services] == ["web", "users", "orders"]


def test_directory_duplicate_service_names_both_files(tmp_path: Path) -> None:
    a = write(tmp_path, FLOW_BASE, "a.yaml")
    b_text = (
        "# more services\n"
        "services:\n"
        "  orders: {port: 8080, versions: {v1: {instances: [users-1]}}}\n"
        "  users: {port: 9090, versions: {v1: {instances: [users-1]}}}  " + MARK + "\n"
    )
    b = write(tmp_path, b_text, "b.yaml")
    problems = problems_of(tmp_path)
    users_in_a = 8
    assert FLOW_BASE.splitlines()[users_in_a - 1].startswith("  users: {port: 8080")
    assert_problem(
        problems,
        path="services.users",
        fragment=f"duplicate name: already defined at {a}:{users_in_a}",
        file=b,
        line=marked_line(b_text),
    )
    assert len(problems) == 1, listing(problems)


def test_directory_mesh_section_in_two_files(tmp_path: Path) -> None:
    write(tmp_path, FLOW_BASE, "a.yaml")
    b_text = "hosts:\n  orders-1: {address: 127.0.30.9}\nmesh: {name: other}  " + MARK + "\n"
    b = write(tmp_path, b_text, "b.yaml")
    problems = problems_of(tmp_path)
    assert_problem(
        problems, path="mesh", fragment="section is defined in more than one file", file=b, line=marked_line(b_text)
    )
    assert len(problems) == 1, listing(problems)


def test_directory_problem_points_into_the_file_that_has_it(tmp_path: Path) -> None:
    write(tmp_path, FLOW_BASE, "a.yaml")
    b_text = (
        "hosts:\n"
        "  orders-1: {address: 127.0.30.9}\n"
        "services:\n"
        "  orders:\n"
        "    port: 8080\n"
        "    versions: {v1: {instances: [orders-1]}}\n"
        "    dependencies: [users, billing]  " + MARK + "\n"
    )
    b = write(tmp_path, b_text, "b.yaml")
    problems = problems_of(tmp_path)
    assert_problem(
        problems,
        path="services.orders.dependencies[1].service",
        fragment="unknown dependency 'billing'",
        file=b,
        line=marked_line(b_text),
    )
    assert len(problems) == 1, listing(problems)


def test_directory_duplicates_in_block_style_are_reported_at_their_key(tmp_path: Path) -> None:
    """Both duplicates written the usual way; each is located at the line of its name."""
    a = write(tmp_path, BASE, "a.yaml")
    b_text = (
        "mesh:  " + MARK + "\n"
        "  name: other\n"
        "services:\n"
        "  users:\n"
        "    port: 9090\n"
        "    versions:\n"
        "      v1: {instances: [users-1]}\n"
    )
    b = write(tmp_path, b_text, "b.yaml")
    problems = problems_of(tmp_path)
    users_in_a = BASE.splitlines().index("  users:") + 1
    users_in_b = b_text.splitlines().index("  users:") + 1
    assert (users_in_a, users_in_b) == (14, 4)
    assert_problem(problems, path="mesh", fragment="section is defined in more than one file", file=b, line=1)
    assert_problem(
        problems,
        path="services.users",
        fragment=f"duplicate name: already defined at {a}:{users_in_a}",
        file=b,
        line=users_in_b,
    )
    assert len(problems) == 2, listing(problems)


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("not a catalog\n", encoding="utf-8")
    problems = problems_of(tmp_path)
    assert problems == [Problem(path="", message="no *.yaml files in directory", file=str(tmp_path), line=None)]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    problems = problems_of(missing)
    assert problems == [Problem(path="", message="catalog file not found", file=str(missing), line=None)]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- mesh\n- services\n")
    assert problems_of(path) == [
        Problem(path="", message="expected a mapping at the top level", file=str(path), line=1)
    ]


def test_empty_file_problems_name_the_file(tmp_path: Path) -> None:
    """An empty catalog lacks `mesh` and `services`; the user must still be told which file."""
    path = write(tmp_path, "# nothing here yet\n")
    problems = problems_of(path)
    assert [(p.path, p.message) for p in problems] == [
        ("mesh", "required field is missing"),
        ("services", "required field is missing"),
    ]
    assert {p.file for p in problems} == {str(path)}, listing(problems)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


def invalid_catalog(tmp_path: Path) -> tuple[Path, list[str]]:
    """A catalog with two problems, and the lines `validate` must print on stderr for them."""
    text = catalog(
        ("  users:\n    port: 8080", "  users:\n    port: abc  " + MARK),
        append="extras: {owner: team-a}\n",
    )
    path = write(tmp_path, text)
    extras_line = text.splitlines().index("extras: {owner: team-a}") + 1
    assert (marked_line(text), extras_line) == (15, 19)
    expected = [
        "meshgen: invalid catalog: 2 problems",
        f"  {path}:15: services.users.port: "
        "Input should be a valid integer, unable to parse string as an integer, got 'abc'",
        f"  {path}:19: extras: unknown field",
    ]
    return path, expected


def test_cli_validate_invalid_prints_file_line_path_message(tmp_path: Path) -> None:
    path, expected = invalid_catalog(tmp_path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected


def test_cli_validate_reports_cross_field_problems(tmp_path: Path) -> None:
    text = catalog(("    dependencies: [users]", "    dependencies: [users, billing]  " + MARK))
    path = write(tmp_path, text)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "meshgen: invalid catalog: 1 problem",
        f"  {path}:{marked_line(text)}: services.web.dependencies[1].service: "
        "unknown dependency 'billing' (services and external: users, web)",
    ]


def test_cli_validate_missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = CliRunner().invoke(main, ["validate", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["meshgen: invalid catalog: 1 problem", f"  {missing}: catalog file not found"]


def test_cli_generate_invalid_creates_no_output(tmp_path: Path) -> None:
    path, expected = invalid_catalog(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(path), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected
    assert not out.exists()


def test_cli_generate_invalid_leaves_existing_output_untouched(tmp_path: Path) -> None:
    path, _ = invalid_catalog(tmp_path)
    out = tmp_path / "out"
    (out / "web.v1.web-1").mkdir(parents=True)
    (out / "web.v1.web-1" / "envoy.yaml").write_text("previous: config\n", encoding="utf-8")
    (out / ".meshgen-manifest.json").write_text('{"files": ["web.v1.web-1/envoy.yaml"]}', encoding="utf-8")
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    result = CliRunner().invoke(main, ["generate", str(path), "-o", str(out)])
    assert result.exit_code == 2, result.output
    after = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == before
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == [
        Path(".meshgen-manifest.json"),
        Path("web.v1.web-1"),
        Path("web.v1.web-1/envoy.yaml"),
    ]


def test_cli_generate_valid_writes_output(tmp_path: Path) -> None:
    """The control for the two tests above: the same command does write when the catalog is valid."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(write(tmp_path, BASE)), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "users.v1.users-1",
        "users.v2.users-2",
        "web.v1.web-1",
    ]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_cli_validate_examples_exit_0(example: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(example)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith(f"{example}: valid: mesh {example.parent.name}, ")


def test_examples_are_found() -> None:
    assert [p.parent.name for p in EXAMPLES] == ["minimal", "shop", "tcp"]
