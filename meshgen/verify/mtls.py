"""A mutual-TLS client that speaks to a sidecar's inbound listener as a given identity.

Verification mints short-lived certificates from the mesh CA (or another CA, to be refused) and
connects as the caller they name: the SNI is the callee's name, the callee must present its own
SPIFFE ID, and the reply says whether authorization let the call through.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from meshgen.durations import Duration
from meshgen.pki.authority import Authority
from meshgen.pki.certificates import cert_pem, create_ca, key_pem
from meshgen.pki.store import write_private
from meshgen.verify.http import Reply

MINTED_LIFETIME = Duration(10 * 60_000)


@dataclass(frozen=True)
class Credentials:
    """A certificate and key on disk (Python's ssl reads files only), and the CAs to trust."""

    directory: Path

    @property
    def cert(self) -> str:
        return str(self.directory / "cert.pem")

    @property
    def key(self) -> str:
        return str(self.directory / "key.pem")

    @property
    def trust(self) -> str:
        return str(self.directory / "trust.pem")


def mint(authority: Authority, spiffe_id: str, trust: list[x509.Certificate], into: Path) -> Credentials:
    """Credentials for `spiffe_id` signed by `authority`, trusting `trust`, in a new 0700 directory."""
    directory = Path(tempfile.mkdtemp(prefix="identity-", dir=into))
    leaf, key = authority.issue(spiffe_id, MINTED_LIFETIME)
    write_private(directory / "key.pem", key_pem(key))
    write_private(directory / "cert.pem", b"".join(cert_pem(c) for c in [leaf, *authority.chain]), 0o644)
    write_private(directory / "trust.pem", b"".join(cert_pem(c) for c in trust), 0o644)
    return Credentials(directory)


def foreign_authority(trust_domain: str) -> Authority:
    """A CA the mesh has never heard of, issuing the same kind of identities."""
    cert, key = create_ca(trust_domain, Duration(3_600_000))
    return Authority(cert=cert, key=key, bundle=[cert], source="a CA outside the mesh")


@dataclass(frozen=True)
class TlsReply:
    handshake: bool  # False: the server refused us (or we refused it) during the TLS handshake
    peer_ids: tuple[str, ...]  # the server's URI SANs
    reply: Reply  # for HTTP; status 0 when nothing came back
    error: str = ""


def _peer_ids(sock: ssl.SSLSocket) -> tuple[str, ...]:
    cert = sock.getpeercert() or {}
    names: Any = cert.get("subjectAltName", ())
    return tuple(str(entry[1]) for entry in names if entry[0] == "URI")


def _connect(address: str, port: int, sni: str, credentials: Credentials, timeout: float) -> ssl.SSLSocket:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False  # SPIFFE IDs are URI SANs; the caller checks them itself
    context.load_verify_locations(credentials.trust)
    context.load_cert_chain(credentials.cert, credentials.key)
    raw = socket.create_connection((address, port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def https_request(
    address: str,
    port: int,
    sni: str,
    credentials: Credentials,
    *,
    method: str = "GET",
    path: str = "/",
    timeout: float = 10.0,
) -> TlsReply:
    """One HTTP request over mutual TLS; a refused handshake is an answer, not an error."""
    started = time.monotonic()
    try:
        sock = _connect(address, port, sni, credentials, timeout)
    except (ssl.SSLError, OSError) as exc:
        return TlsReply(False, (), Reply(0, str(exc), time.monotonic() - started, {}), str(exc))
    peer = _peer_ids(sock)
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    connection.sock = sock
    try:
        connection.request(method, path, headers={"Host": sni})
        response = connection.getresponse()
        body = response.read().decode("utf-8", errors="replace")
        headers = {k.lower(): v for k, v in response.getheaders()}
        reply = Reply(response.status, body, time.monotonic() - started, headers)
    except (OSError, http.client.HTTPException) as exc:
        # TLS 1.3 lets a client finish its handshake before the server checked its certificate:
        # a refused certificate shows up here, as the connection closing.
        return TlsReply(False, peer, Reply(0, str(exc), time.monotonic() - started, {}), str(exc))
    finally:
        connection.close()
    return TlsReply(True, peer, reply)


def tls_line(address: str, port: int, sni: str, credentials: Credentials, timeout: float = 5.0) -> TlsReply:
    """Send a line over mutual TLS to a TCP service and read one line back (the demo app echoes)."""
    started = time.monotonic()
    try:
        sock = _connect(address, port, sni, credentials, timeout)
    except (ssl.SSLError, OSError) as exc:
        return TlsReply(False, (), Reply(0, str(exc), time.monotonic() - started, {}), str(exc))
    peer = _peer_ids(sock)
    try:
        sock.sendall(b"verify\n")
        answer = sock.recv(4096).decode("utf-8", errors="replace")
    except (ssl.SSLError, OSError) as exc:
        return TlsReply(False, peer, Reply(0, str(exc), time.monotonic() - started, {}), str(exc))
    finally:
        sock.close()
    # No bytes back: the sidecar closed the connection (authorization refused it).
    return TlsReply(True, peer, Reply(200 if answer else 0, answer, time.monotonic() - started, {}))


def plain_line(address: str, port: int, timeout: float = 5.0) -> str:
    """Send a plaintext line to a TCP listener; what came back ('' when it closed or reset)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.sendall(b"verify\n")
            return sock.recv(4096).decode("utf-8", errors="replace")
    except OSError:
        return ""
