"""Service identities of an ecs-envoy mesh: certificates issued where meshgen runs, kept in AWS
Secrets Manager, handed by ECS to each task at start.

Every service has one secret, `meshgen/<mesh>/identity/<service>` (created empty by the ecs-mesh
module), whose value is JSON: `cert` (the X.509-SVID and the CA's chain), `key` (its private key)
and `ca` (the CAs the service trusts). Every task of every version of a service presents the same
certificate and key: meshgen runs no control plane, so there is nothing that could give each task
a certificate of its own at start; the secret, read by ECS with the service's own execution role,
is what reaches every task. Key material goes from memory to Secrets Manager: never to disk
(outside the CA directory), never printed, never into Terraform.

Tasks read their certificate once, at start. `rotate` issues new certificates and replaces the
tasks through a rolling deployment of every ECS service, which must happen within half the leaf
lifetime. It keeps the rule the local mesh keeps: the trust bundle holds every CA that signed a
certificate still in use. When the CA changed (a catalog naming another CA), the running tasks do
not trust it yet, so a rotation first only widens every bundle (same certificates), and the next
one, after that deployment has finished, issues certificates from the new CA.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from cryptography import x509

from meshgen.errors import InputError, UserError
from meshgen.model.mesh import Mesh
from meshgen.pki.authority import Authority
from meshgen.pki.certificates import cert_pem, describe, key_pem, load_certs, now, signed_by
from meshgen.render.terraform.ecs import check_leaf_lifetime, discovery_name

# The secret value's JSON keys; terraform/modules/ecs-envoy-service hands each to the Envoy container.
CERT_KEY = "cert"
KEY_KEY = "key"
CA_KEY = "ca"
SECRET_KEYS = (CERT_KEY, KEY_KEY, CA_KEY)
CURRENT = "AWSCURRENT"


def secret_name(mesh: str, service: str) -> str:
    """The name the ecs-mesh module gives a service's identity secret."""
    return f"meshgen/{mesh}/identity/{service}"


@dataclass(frozen=True)
class Held:
    """What a service's secret holds now."""

    chain: list[x509.Certificate]  # the leaf, then the CA's chain
    cert: str
    key: str
    bundle: list[x509.Certificate]

    @property
    def anchor(self) -> x509.Certificate | None:
        """The CA of the bundle this certificate chains up to."""
        return anchor_of(self.chain, self.bundle)


def anchor_of(chain: list[x509.Certificate], bundle: list[x509.Certificate]) -> x509.Certificate | None:
    top = chain[-1]
    return next((ca for ca in bundle if ca == top or signed_by(top, ca)), None)


@dataclass(frozen=True)
class Issued:
    service: str
    spiffe_id: str
    serial: str
    not_after: str
    kept: bool = False  # the certificate stayed; only the trust bundle changed

    def describe(self) -> str:
        if self.kept:
            return f"{self.service}: same certificate (serial {self.serial[:16]}), trust bundle widened to the new CA"
        serial = self.serial[:16]
        return f"{self.service}: certificate for {self.spiffe_id} (serial {serial}, valid until {self.not_after})"


@dataclass
class Report:
    issued: list[Issued]
    restarted: list[str]  # ECS services given a new deployment
    trust_only: bool = False  # a CA change: run rotate again once the deployments have finished
    unchanged: list[str] = field(default_factory=list)  # services whose secret already held one (push)


class Identities:
    """The identity secrets of one mesh, read and written with boto3."""

    def __init__(self, mesh: Mesh, session: Any, secret_ids: dict[str, str] | None = None) -> None:
        if not mesh.security.enabled:
            raise InputError(f"mesh {mesh.name} has mtls off: its services have no identities to push")
        check_leaf_lifetime(mesh)
        self.mesh = mesh
        self.secrets = session.client("secretsmanager")
        self.ecs = session.client("ecs")
        names = {s.name: secret_name(mesh.name, s.name) for s in mesh.services}
        self.secret_ids = {**names, **(secret_ids or {})}

    def _held(self, service: str) -> Held | None:
        """The secret's current value; None when it has none yet (or one meshgen cannot read)."""
        secret_id = self.secret_ids[service]
        try:
            described = self.secrets.describe_secret(SecretId=secret_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise UserError(
                    f"identity secret {secret_id} of service {service} not found: apply the ecs-envoy root "
                    "first (meshgen aws apply), in this region"
                ) from None
            raise
        if not any(CURRENT in stages for stages in described.get("VersionIdsToStages", {}).values()):
            return None
        value = self.secrets.get_secret_value(SecretId=secret_id)
        try:
            data = json.loads(value["SecretString"])
            chain = load_certs(data[CERT_KEY].encode(), secret_id)
            bundle = load_certs(data[CA_KEY].encode(), secret_id)
            key = str(data[KEY_KEY])
        except (KeyError, TypeError, ValueError, InputError):
            return None  # not meshgen's value: replaced as if empty
        if not chain or not bundle:
            return None
        return Held(chain=chain, cert=str(data[CERT_KEY]), key=key, bundle=bundle)

    def _read_all(self) -> dict[str, Held | None]:
        return {service.name: self._held(service.name) for service in self.mesh.services}

    def _put(self, service: str, cert: str, key: str, bundle: Iterable[x509.Certificate]) -> None:
        ca = b"".join(cert_pem(c) for c in bundle).decode()
        self.secrets.put_secret_value(
            SecretId=self.secret_ids[service], SecretString=json.dumps({CERT_KEY: cert, KEY_KEY: key, CA_KEY: ca})
        )

    def _issue(self, service: str, authority: Authority, bundle: list[x509.Certificate]) -> Issued:
        spiffe_id = self.mesh.security.service_id(service)
        leaf, key = authority.issue(spiffe_id, self.mesh.security.leaf_lifetime)
        cert = b"".join(cert_pem(c) for c in [leaf, *authority.chain]).decode()
        self._put(service, cert, key_pem(key).decode(), bundle)
        info = describe(leaf)
        return Issued(service, spiffe_id, info.serial, info.not_after.isoformat(timespec="seconds"))

    def push(self, authority: Authority) -> Report:
        """A certificate into every secret that holds none yet (a new mesh, a new service)."""
        held = self._read_all()
        bundle, behind = _trust(authority, held)
        if behind:
            raise UserError(
                f"the running tasks of {', '.join(behind)} do not trust the CA that would sign ({authority.source}): "
                "the mesh's CA changed; run `meshgen aws certs rotate` (once to spread the trust, once more after "
                "the deployments finished to issue from the new CA), then push"
            )
        issued = [self._issue(name, authority, bundle) for name, current in held.items() if current is None]
        unchanged = sorted(name for name, current in held.items() if current is not None)
        return Report(issued=issued, restarted=[], unchanged=unchanged)

    def rotate(self, authority: Authority) -> Report:
        """New certificates for every service, then a rolling deployment of every ECS service."""
        held = self._read_all()
        bundle, behind = _trust(authority, held)
        issued = []
        for name, current in held.items():
            if behind and current is not None:
                # Trust first: the same certificate, with a bundle that also holds the new CA.
                self._put(name, current.cert, current.key, bundle)
                info = describe(current.chain[0])
                issued.append(Issued(name, "", info.serial, info.not_after.isoformat(timespec="seconds"), kept=True))
            else:
                issued.append(self._issue(name, authority, bundle))
        restarted = []
        for service in self.mesh.services:
            for version in service.versions:
                name = discovery_name(service.name, version.name)
                self.ecs.update_service(cluster=self.mesh.name, service=name, forceNewDeployment=True)
                restarted.append(name)
        return Report(issued=issued, restarted=restarted, trust_only=bool(behind))


def _trust(authority: Authority, held: dict[str, Held | None]) -> tuple[list[x509.Certificate], list[str]]:
    """The bundle to push (the authority's, plus every still valid CA that signed a certificate in
    use) and the services whose current bundle does not trust the authority yet."""
    bundle = list(authority.bundle)
    at = now()
    for current in held.values():
        anchor = current.anchor if current is not None else None
        if anchor is not None and anchor not in bundle and anchor.not_valid_after_utc > at:
            bundle.append(anchor)
    new_anchor = anchor_of([authority.cert, *authority.chain], authority.bundle) or authority.cert
    behind = sorted(name for name, current in held.items() if current is not None and new_anchor not in current.bundle)
    return bundle, behind
