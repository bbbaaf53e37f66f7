"""An app that calls an outside service by its real name, with a client that honours http_proxy
(curl here), reaches the catalog's external through its sidecar, which originates TLS, verifies the
server against the catalog's CA bundle and sends the real name as SNI and Host. Hosts on 127.0.69.x."""

from __future__ import annotations

import datetime
import http.server
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshgen.deploy.local.runner import down, up
from tests.support import need_tool

pytestmark = pytest.mark.envoy

CATALOG = """
mesh: {name: outside}
hosts:
  shop-1: {address: 127.0.69.1}
services:
  shop: {port: 8080, edge: true, versions: {v1: {instances: [shop-1]}}, dependencies: [payments]}
external:
  payments:
    address: pay.example.com
    port: 443
    tls: true
    ca_file: CA_FILE
    hosts: [pay.example.com, payments.example.net]
"""
SHOP_LOCAL = "127.0.69.129"


def _certificate(
    subject: str, issuer: x509.Certificate | None, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def payments(tmp_path: Path) -> Iterator[tuple[int, Path, list[tuple[str, str, str]]]]:
    """A TLS server for pay.example.com on 127.0.69.50 that records (SNI, Host, path) per request."""
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test outside CA", None, ca_key, ca_key)
    server = _certificate("pay.example.com", ca, server_key, ca_key)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server-key.pem").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    seen: list[tuple[str, str, str]] = []
    names: dict[int, str] = {}

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server-key.pem")
    context.sni_callback = lambda sock, name, _: names.__setitem__(id(sock), name or "")  # type: ignore[assignment,func-returns-value]

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((names.get(id(self.connection), ""), self.headers.get("Host", ""), self.path))
            body = b"paid"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.69.50", 0), Recorder)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_port, tmp_path / "ca.pem", seen
    finally:
        httpd.shutdown()


def test_a_proxy_aware_client_reaches_an_external_by_its_real_name(
    tmp_path: Path, payments: tuple[int, Path, list[tuple[str, str, str]]]
) -> None:
    curl = need_tool("curl")
    port, ca_file, seen = payments
    catalog, state_dir = tmp_path / "catalog.yaml", tmp_path / "state"
    catalog.write_text(CATALOG.replace("CA_FILE", str(ca_file)))
    try:
        up(catalog, state_dir, {"payments": ("127.0.69.50", port)})
        # The environment meshgen gives shop's app: curl reads http_proxy and no_proxy from it.
        environ = Path(f"/proc/{_app_pid(state_dir)}/environ").read_bytes().split(b"\0")
        app_env = dict(e.decode().split("=", 1) for e in environ if b"=" in e)
        assert app_env["http_proxy"] == f"http://{SHOP_LOCAL}:15001"
        env = {"PATH": os.environ.get("PATH", ""), **{k: app_env[k] for k in ("http_proxy", "no_proxy")}}
        for url in ("http://pay.example.com/charge", "http://payments.example.net/refund", app_env["PAYMENTS_URL"]):
            done = subprocess.run(
                [curl, "-sS", "--max-time", "10", "-o", "-", "-w", " %{http_code}", url],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
            assert done.stdout == "paid 200", (url, done.stdout, done.stderr)
        # TLS originated by the sidecar, server verified (the CA above), real name as SNI and Host.
        assert seen == [
            ("pay.example.com", "pay.example.com", "/charge"),
            ("pay.example.com", "pay.example.com", "/refund"),
            ("pay.example.com", "pay.example.com", "/"),
        ]
        # A name the catalog does not give the external gets no route: scoping is egress control.
        other = subprocess.run(
            [curl, "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "http://example.org/"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert other.stdout == "404"
    finally:
        down(state_dir)


def _app_pid(state_dir: Path) -> int:
    from meshgen.deploy.local.state import load_state

    state = load_state(state_dir)
    assert state is not None
    return state.by_name()["shop.v1.shop-1 app"].pid
