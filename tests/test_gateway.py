"""The ingress gateway on a live mesh: a standalone Envoy that routes callers from outside by Host
and path, applies the services' own routes (a canary of the front end itself), serves HTTPS with
a certificate of the mesh CA or one the catalog gives, limits rates, starts the trace, and calls
into the mesh with its own identity; verify checks every route through it. Hosts on 127.0.73.x."""

from __future__ import annotations

import datetime
import ssl
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshgen.cli import main
from meshgen.deploy.local.runner import down
from meshgen.model import load_mesh
from meshgen.verify import run_checks
from meshgen.verify.authority import find_authority
from meshgen.verify.http import send
from tests.support import need_tool

pytestmark = pytest.mark.envoy

CATALOG = """
mesh:
  name: gates
  tracing: {provider: zipkin, collector: collector-1:9411}
hosts:
  gw-1: {address: 127.0.73.1}
  web-1: {address: 127.0.73.2}
  web-2: {address: 127.0.73.3}
  api-1: {address: 127.0.73.4}
  collector-1: {address: 127.0.73.9}
gateways:
  public:
    hosts: [gw-1]
    port: 8080
    tls: {port: 8443}
    rate_limit: {requests: 1000, per: 1s}
    routes:
      - {name: api, domains: [api.example.test], service: api, rate_limit: {requests: 5, per: 1m}}
      - {name: shop, domains: [shop.example.test, "*"], service: web}
  partner:
    hosts: [gw-1]
    port: 9080
    admin_port: 15100
    stats_port: 15190
    tls: {port: 9443, cert: partner.pem, key: partner-key.pem}
    routes:
      - {name: partner-api, match: {prefix: /v1/}, service: api}
services:
  web:
    port: 8080
    versions: {v1: {instances: [web-1]}, v2: {instances: [web-2]}}
    dependencies: [api]
    routes:
      - {name: canary, match: {headers: {x-canary: "yes"}}, to: {v2: 100}}
      - {name: split, to: {v1: 9, v2: 1}}
  api:
    port: 8080
    versions: {v1: {instances: [api-1]}}
"""
GATEWAY, PARTNER = ("127.0.73.1", 8080), ("127.0.73.1", 9080)


def _partner_certificate(directory: Path) -> Path:
    """A certificate for partner.example.test from a CA of its own (not the mesh's); returns the CA."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "partner test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    served = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "partner.example.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("partner.example.test")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "partner.pem").write_bytes(served.public_bytes(serialization.Encoding.PEM))
    (directory / "partner-key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (directory / "partner-key.pem").chmod(0o600)
    (directory / "partner-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return directory / "partner-ca.pem"


@pytest.fixture(scope="module")
def mesh_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("gates")
    _partner_certificate(directory)
    (directory / "catalog.yaml").write_text(CATALOG)
    result = CliRunner().invoke(main, ["up", str(directory / "catalog.yaml"), "--state-dir", str(directory / "state")])
    try:
        assert result.exit_code == 0, result.output
        assert "gateway public:  curl http://127.0.73.1:8080/" in result.output
        assert "gateway partner:  https://127.0.73.1:9443/" in result.output
        yield directory
    finally:
        down(directory / "state")


def answered_by(address: tuple[str, int], path: str = "/", **headers: str) -> tuple[int, str | None]:
    reply = send(*address, path, headers=headers, timeout=10)
    return reply.status, reply.body.get("service", "") + "." + reply.body.get("version", "") if isinstance(
        reply.body, dict
    ) else None


def test_routes_by_host_and_applies_the_service_routes(mesh_dir: Path) -> None:
    assert answered_by(GATEWAY, Host="shop.example.test", **{"x-canary": "yes"}) == (200, "web.v2")
    assert answered_by(GATEWAY, Host="api.example.test") == (200, "api.v1")
    split = Counter(answered_by(GATEWAY, Host="anything.example")[1] for _ in range(200))
    assert set(split) == {"web.v1", "web.v2"} and 5 <= split["web.v2"] <= 45, split  # 9:1 at the gateway
    assert answered_by(PARTNER, "/v1/orders") == (200, "api.v1")
    assert answered_by(PARTNER, "/v2/orders")[0] == 404  # outside every route of that gateway


def test_the_front_end_is_reached_only_through_the_gateway(mesh_dir: Path) -> None:
    mesh = load_mesh(mesh_dir / "catalog.yaml")
    web = mesh.service("web").instances[0]
    assert send(web.host.address, web.inbound_port, "/", timeout=5).status == 0  # no plaintext from outside


def test_https_with_a_certificate_of_the_mesh_ca(mesh_dir: Path) -> None:
    """Issued for the gateway's Host names, checked by name against the mesh CA."""
    curl = need_tool("curl")
    trust = mesh_dir / "state" / "tls" / "trust" / "current" / "ca.pem"
    done = subprocess.run(
        [
            curl,
            "-sS",
            "--cacert",
            str(trust),
            "--resolve",
            "shop.example.test:8443:127.0.73.1",
            "-H",
            "x-canary: yes",
            "https://shop.example.test:8443/",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert '"service": "web"' in done.stdout and '"version": "v2"' in done.stdout, done.stderr
    wrong_name = subprocess.run(
        [
            curl,
            "-sS",
            "--cacert",
            str(trust),
            "--resolve",
            "other.example.test:8443:127.0.73.1",
            "https://other.example.test:8443/",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert wrong_name.returncode != 0  # the certificate names only the gateway's Host names


def test_https_with_the_certificate_the_catalog_gives(mesh_dir: Path) -> None:
    context = ssl.create_default_context(cafile=str(mesh_dir / "partner-ca.pem"))
    with context.wrap_socket(
        __import__("socket").create_connection(("127.0.73.1", 9443), timeout=5), server_hostname="partner.example.test"
    ) as tls:
        tls.sendall(b"GET /v1/x HTTP/1.1\r\nHost: partner.example.test\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b'"service": "api"' in answer


def test_a_route_rate_limit_answers_429(mesh_dir: Path) -> None:
    statuses = Counter(answered_by(GATEWAY, "/limited", Host="api.example.test")[0] for _ in range(12))
    assert statuses[429] >= 5 and statuses[200] <= 5, statuses  # 5 a minute on that route


def test_verify_checks_every_route_through_the_gateway(mesh_dir: Path) -> None:
    mesh = load_mesh(mesh_dir / "catalog.yaml")
    results, skipped = run_checks(
        mesh,
        ("config", "security", "routing", "fault", "tracing"),
        authority=find_authority(mesh, None, mesh_dir / "state"),
    )
    assert [r for r in results if not r.passed] == []
    names = {(r.kind, r.name) for r in results}
    assert {("routing", "web/canary"), ("routing", "web/split"), ("config", "public.gateway.gw-1")} <= names
    assert ("security", "web: admits gateway public") in names
    assert not [s for s in skipped if "calls it" in s.reason], skipped  # no route is left unchecked
    tracing = next(r for r in results if r.kind == "tracing")
    assert "through public -> web -> api" in tracing.detail
