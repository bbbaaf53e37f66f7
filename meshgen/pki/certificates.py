"""X.509 for the mesh, with pyca/cryptography: a CA, SPIFFE leaf certificates, and reading them back.

Leaves follow the X.509-SVID profile: exactly one URI SAN (the SPIFFE ID), not a CA, key usage
for signatures, usable as server and client. Keys are ECDSA P-256: small, fast to handshake, and
accepted by every TLS stack Envoy and the tests use.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshgen.durations import Duration
from meshgen.errors import InputError

# Certificates start a little in the past, so a clock slightly behind ours still accepts them.
BACKDATE = datetime.timedelta(minutes=5)
PrivateKey = ec.EllipticCurvePrivateKey
# A CA you bring may sign with RSA; meshgen's own keys are always ECDSA.
SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def create_ca(
    trust_domain: str, lifetime: Duration, key: PrivateKey | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed root for the trust domain, allowed to sign leaves only (path length 0)."""
    key = key or new_key()
    start = now()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshgen"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{trust_domain} mesh CA {start:%Y-%m-%d %H:%M:%S}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - BACKDATE)
        .not_valid_after(start + datetime.timedelta(milliseconds=lifetime.ms))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: SigningKey,
    spiffe_id: str,
    lifetime: Duration,
    *,
    key: PrivateKey | None = None,
    dns_names: tuple[str, ...] = (),
) -> tuple[x509.Certificate, PrivateKey]:
    """An X.509-SVID for `spiffe_id`, valid for `lifetime` but never beyond its CA; `dns_names`
    as well for a certificate browsers check by name (a gateway's HTTPS)."""
    key = key or new_key()
    start = now()
    end = min(start + datetime.timedelta(milliseconds=lifetime.ms), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshgen")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - BACKDATE)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(spiffe_id), *(x509.DNSName(name) for name in dns_names)]
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    uris: tuple[str, ...]
    serial: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    is_ca: bool
    dns: tuple[str, ...] = ()

    def remaining(self, at: datetime.datetime | None = None) -> datetime.timedelta:
        return self.not_after - (at or now())

    def past_half_life(self, at: datetime.datetime | None = None) -> bool:
        return (at or now()) >= self.not_before + (self.not_after - self.not_before) / 2


def describe(cert: x509.Certificate) -> CertInfo:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(sans.get_values_for_type(x509.UniformResourceIdentifier))
        dns = tuple(sans.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        uris, dns = (), ()
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        uris=uris,
        serial=format(cert.serial_number, "X"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca,
        dns=dns,
    )


def load_certs(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise InputError(f"{source}: not PEM certificates: {exc}") from None
    return certs


def load_key(data: bytes, source: str) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{source}: not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InputError(f"{source}: expected an ECDSA or RSA key, got {type(key).__name__}")
    return key


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
