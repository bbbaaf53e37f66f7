"""The CA that signs sidecar certificates: meshgen's own (created once, rotatable) or yours.

meshgen's own CA lives in a directory of generations:

    <ca dir>/<generation>/ca.pem, ca-key.pem (0600), retire-after   active -> <generation>
    <ca dir>/trust.pem

The active generation signs. A rotation makes a new active generation and keeps the old one in
the trust bundle until every certificate it signed has expired (`retire-after`), so sidecars
holding old and new certificates keep trusting each other while they change over. `trust.pem`
is that bundle as of the last time meshgen used the CA (every generation not yet retired), for
deploy targets that read files rather than call meshgen: the on-prem envoy role installs it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshgen.durations import Duration
from meshgen.errors import InputError
from meshgen.model.mesh import Security
from meshgen.pki.certificates import (
    PrivateKey,
    SigningKey,
    cert_pem,
    create_ca,
    issue_leaf,
    key_pem,
    load_certs,
    load_key,
    now,
)
from meshgen.pki.store import write_private

ACTIVE = "active"
CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
RETIRE_AFTER = "retire-after"
TRUST_BUNDLE = "trust.pem"


@dataclass
class Authority:
    cert: x509.Certificate  # signs leaves
    key: SigningKey
    chain: list[x509.Certificate] = field(default_factory=list)  # sent after each leaf (intermediates)
    bundle: list[x509.Certificate] = field(default_factory=list)  # what every sidecar trusts
    source: str = ""

    def issue(
        self, spiffe_id: str, lifetime: Duration, dns_names: tuple[str, ...] = ()
    ) -> tuple[x509.Certificate, PrivateKey]:
        return issue_leaf(self.cert, self.key, spiffe_id, lifetime, dns_names=dns_names)


def user_authority(cert_path: str, key_path: str) -> Authority:
    """Your CA: its certificate first, then the chain up to the root, which sidecars trust."""
    for path in (cert_path, key_path):
        if not Path(path).is_file():
            raise InputError(f"mesh.security.ca: {path} not found")
    certs = load_certs(Path(cert_path).read_bytes(), cert_path)
    key = load_key(Path(key_path).read_bytes(), key_path)
    if not certs:
        raise InputError(f"mesh.security.ca.cert: {cert_path} holds no certificate")
    signer, root = certs[0], certs[-1]
    if _public(signer.public_key()) != _public(key.public_key()):
        raise InputError(f"mesh.security.ca: {key_path} is not the key of the first certificate in {cert_path}")
    if root.issuer != root.subject:
        raise InputError(
            f"mesh.security.ca.cert: {cert_path} must end with the root certificate (sidecars trust the root; "
            f"the last certificate there is issued by {root.issuer.rfc4514_string()})"
        )
    chain = [c for c in certs if c.issuer != c.subject]
    return Authority(cert=signer, key=key, chain=chain, bundle=[root], source=cert_path)


def _public(key: object) -> bytes:
    assert hasattr(key, "public_bytes")
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def _generations(ca_dir: Path) -> list[Path]:
    if not ca_dir.is_dir():
        return []
    return sorted(p for p in ca_dir.iterdir() if p.is_dir() and not p.is_symlink() and (p / CA_CERT).exists())


def _create_generation(ca_dir: Path, trust_domain: str, lifetime: Duration) -> Path:
    cert, key = create_ca(trust_domain, lifetime)
    ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    generation = ca_dir / f"{now():%Y%m%dT%H%M%S%f}"
    generation.mkdir(mode=0o700)
    write_private(generation / CA_KEY, key_pem(key))
    write_private(generation / CA_CERT, cert_pem(cert), 0o644)
    temporary = ca_dir / f".{ACTIVE}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(generation.name)
    os.replace(temporary, ca_dir / ACTIVE)
    return generation


def _retired(generation: Path, at: datetime.datetime) -> bool:
    marker = generation / RETIRE_AFTER
    if not marker.exists():
        return False
    return datetime.datetime.fromisoformat(marker.read_text().strip()) <= at


def default_ca_dir(mesh: str) -> Path:
    """Where meshgen keeps its CA for a mesh deployed elsewhere (on-prem, AWS): outside any
    output tree, `$MESHGEN_CA_DIR` or `$XDG_DATA_HOME/meshgen/ca/<mesh>` (~/.local/share)."""
    explicit = os.environ.get("MESHGEN_CA_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "meshgen" / "ca" / mesh


def has_own_authority(ca_dir: Path) -> bool:
    return (ca_dir / ACTIVE / CA_CERT).exists()


def own_authority(ca_dir: Path, trust_domain: str, ca_lifetime: Duration) -> Authority:
    """meshgen's CA in `ca_dir`, created on first use."""
    active = ca_dir / ACTIVE
    if not has_own_authority(ca_dir):
        _create_generation(ca_dir, trust_domain, ca_lifetime)
    generation = active.resolve()
    cert = load_certs((generation / CA_CERT).read_bytes(), str(generation / CA_CERT))[0]
    key = load_key((generation / CA_KEY).read_bytes(), str(generation / CA_KEY))
    at = now()
    bundle = [cert]
    for other in _generations(ca_dir):
        if other != generation and not _retired(other, at):
            bundle += load_certs((other / CA_CERT).read_bytes(), str(other / CA_CERT))
    _publish_bundle(ca_dir, bundle)
    return Authority(cert=cert, key=key, bundle=bundle, source=str(ca_dir))


def _publish_bundle(ca_dir: Path, bundle: list[x509.Certificate]) -> None:
    """Make `<ca dir>/trust.pem` hold `bundle`, replaced whole by a rename when it differs."""
    data = b"".join(cert_pem(c) for c in bundle)
    path = ca_dir / TRUST_BUNDLE
    if path.exists() and path.read_bytes() == data:
        return
    temporary = ca_dir / f".{TRUST_BUNDLE}.tmp"
    temporary.unlink(missing_ok=True)
    write_private(temporary, data, 0o644)
    os.replace(temporary, path)


def rotate_own_authority(ca_dir: Path, trust_domain: str, ca_lifetime: Duration, leaf_lifetime: Duration) -> Authority:
    """A new active CA; the previous one stays trusted until its last leaf can have expired."""
    previous = (ca_dir / ACTIVE).resolve() if (ca_dir / ACTIVE).exists() else None
    _create_generation(ca_dir, trust_domain, ca_lifetime)
    if previous is not None:
        retire = now() + datetime.timedelta(milliseconds=leaf_lifetime.ms)
        (previous / RETIRE_AFTER).write_text(retire.isoformat() + "\n")
    return own_authority(ca_dir, trust_domain, ca_lifetime)


def load_authority(security: Security, own_ca_dir: Path) -> Authority:
    """The catalog's CA if it names one, else meshgen's own in `own_ca_dir`."""
    if security.ca_cert and security.ca_key:
        return user_authority(security.ca_cert, security.ca_key)
    return own_authority(own_ca_dir, security.trust_domain, security.ca_lifetime)
