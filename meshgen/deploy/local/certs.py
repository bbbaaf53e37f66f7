"""Sidecar identities of a local mesh: its CA, a certificate per instance, the trust bundle.

Everything lives in the state directory: `ca/` (meshgen's own CA, unless the catalog names
yours) and `tls/` (what the sidecars read, see meshgen.pki.store). Keys are 0600, owned by the
user running the mesh, and never printed.

Changes follow one rule that makes them safe under traffic: the trust bundle always holds every
CA that signed a certificate still in use. So a change of CA first adds the new CA to every
sidecar's bundle (and waits until each Envoy uses it), then issues new certificates (and waits
again), and only then drops the old CA.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography import x509

from meshgen.deploy.admin import certificates_in_use
from meshgen.deploy.local.state import Process
from meshgen.durations import Duration
from meshgen.errors import UserError
from meshgen.model.mesh import Mesh, Security
from meshgen.pki.authority import Authority, load_authority, rotate_own_authority
from meshgen.pki.certificates import describe, load_certs, signed_by
from meshgen.pki.store import TlsStore
from meshgen.render.envoy.layout import CERT_FILE, CURRENT

CA_DIR = "ca"
TLS_DIR = "tls"
PLAN_FILE = "identities.json"
# How long Envoys may take to use swapped certificates; it usually takes milliseconds.
SWAP_TIMEOUT_SECONDS = 10.0


@dataclass
class IdentityPlan:
    """What the running mesh needs, written by `meshgen up` so renewal needs no catalog."""

    mtls: str
    trust_domain: str
    leaf_lifetime_ms: int
    ca_lifetime_ms: int
    ca_cert: str | None
    ca_key: str | None
    identities: dict[str, str] = field(default_factory=dict)  # instance id -> SPIFFE ID
    # instance id -> DNS names its certificate also holds: a gateway serving HTTPS with a
    # certificate of the mesh CA, for the Host names its routes answer.
    dns_names: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, mesh: Mesh) -> IdentityPlan:
        security = mesh.security
        served = {
            i.id: list(g.domains) for g in mesh.gateways if g.tls_port and g.tls_cert is None for i in g.instances
        }
        return cls(
            mtls=security.mtls,
            trust_domain=security.trust_domain,
            leaf_lifetime_ms=security.leaf_lifetime.ms,
            ca_lifetime_ms=security.ca_lifetime.ms,
            ca_cert=security.ca_cert,
            ca_key=security.ca_key,
            identities={i.id: security.identity(i) for i in mesh.proxies},
            dns_names={k: v for k, v in served.items() if v},
        )

    @property
    def security(self) -> Security:
        return Security(
            mtls=self.mtls,
            trust_domain=self.trust_domain,
            leaf_lifetime=Duration(self.leaf_lifetime_ms),
            ca_lifetime=Duration(self.ca_lifetime_ms),
            ca_cert=self.ca_cert,
            ca_key=self.ca_key,
        )


def save_plan(state_dir: Path, plan: IdentityPlan) -> None:
    path = state_dir / TLS_DIR / PLAN_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(plan), indent=2) + "\n", encoding="utf-8")


def load_plan(state_dir: Path) -> IdentityPlan | None:
    path = state_dir / TLS_DIR / PLAN_FILE
    if not path.exists():
        return None
    return IdentityPlan(**json.loads(path.read_text(encoding="utf-8")))


def store_of(state_dir: Path) -> TlsStore:
    return TlsStore(state_dir / TLS_DIR)


def _leaf(store: TlsStore, instance_id: str) -> x509.Certificate | None:
    path = store.root / instance_id / CURRENT / CERT_FILE
    return load_certs(path.read_bytes(), str(path))[0] if path.exists() else None


def renewal_reason(
    leaf: x509.Certificate | None, spiffe_id: str, authority: Authority, dns_names: tuple[str, ...] = ()
) -> str | None:
    """Why an instance needs a new certificate; None when its current one will do."""
    if leaf is None:
        return "none yet"
    info = describe(leaf)
    if info.uris != (spiffe_id,):
        return f"its identity is now {spiffe_id}"
    if tuple(sorted(info.dns)) != tuple(sorted(dns_names)):
        return f"its names are now {', '.join(dns_names) or 'none'}"
    if not signed_by(leaf, authority.cert):
        return "the CA changed"
    if info.past_half_life():
        return "past half its lifetime"
    return None


Waiter = Callable[[Callable[[Process], bool]], None]


@dataclass
class Renewal:
    issued: dict[str, str] = field(default_factory=dict)  # instance id -> why
    trust_changed: bool = False


def _bundle(authority: Authority, store: TlsStore, instances: list[str]) -> list[x509.Certificate]:
    """The authority's bundle plus every CA that signed a certificate still installed."""
    bundle = list(authority.bundle)
    path = store.root / "trust" / CURRENT / "ca.pem"
    installed = load_certs(path.read_bytes(), str(path)) if path.exists() else []
    leaves = [leaf for leaf in (_leaf(store, i) for i in instances) if leaf is not None]
    for ca in installed:
        if ca not in bundle and any(signed_by(leaf, ca) for leaf in leaves):
            bundle.append(ca)
    return bundle


def ensure_identities(
    state_dir: Path,
    plan: IdentityPlan,
    *,
    renew_all: bool = False,
    rotate_ca: bool = False,
    wait: Waiter | None = None,
) -> Renewal:
    """Bring the certificates in `state_dir` to `plan`; with `wait`, each step waits until the
    running Envoys use what it installed before the next step takes anything away."""
    renewal = Renewal()
    if plan.mtls == "off":
        return renewal
    security = plan.security
    ca_dir = state_dir / CA_DIR
    if rotate_ca:
        if security.ca_cert:
            raise UserError("the catalog names its own CA (mesh.security.ca): rotate that CA yourself, then run up")
        authority = rotate_own_authority(ca_dir, security.trust_domain, security.ca_lifetime, security.leaf_lifetime)
    else:
        authority = load_authority(security, ca_dir)
    store = store_of(state_dir)
    for stale in set(store.instances()) - set(plan.identities):
        store.remove(stale)
    instances = sorted(plan.identities)

    # 1. Trust the new CA (and, still, every CA of a certificate in use).
    if store.install_trust(_bundle(authority, store, instances)):
        renewal.trust_changed = True
        if wait is not None:
            wanted = {ca.serial_number for ca in authority.bundle}
            wait(lambda process: wanted <= _in_use(process)[1])
    # 2. New certificates where needed.
    issued_serials: dict[str, int] = {}
    for instance_id in instances:
        spiffe_id = plan.identities[instance_id]
        dns_names = tuple(plan.dns_names.get(instance_id, ()))
        leaf = _leaf(store, instance_id)
        reason = "rotation" if renew_all else renewal_reason(leaf, spiffe_id, authority, dns_names)
        if reason is None:
            continue
        leaf, key = authority.issue(spiffe_id, security.leaf_lifetime, dns_names)
        store.install_identity(instance_id, leaf, authority.chain, key)
        renewal.issued[instance_id] = reason
        issued_serials[instance_id] = leaf.serial_number
    if issued_serials and wait is not None:
        wait(lambda process: issued_serials.get(process.instance or "", -1) in _in_use(process)[0] | {-1})
    # 3. Stop trusting CAs no certificate needs any more.
    if store.install_trust(_bundle(authority, store, instances)):
        renewal.trust_changed = True
    return renewal


def _in_use(process: Process) -> tuple[set[int], set[int]]:
    return certificates_in_use(process.admin or "") or (set(), set())


def wait_for_envoys(envoys: list[Process]) -> Waiter:
    """A Waiter over these running Envoys: returns when `done` holds for all, or raises."""

    def wait(done: Callable[[Process], bool]) -> None:
        deadline = time.monotonic() + SWAP_TIMEOUT_SECONDS
        pending = list(envoys)
        while pending and time.monotonic() < deadline:
            pending = [p for p in pending if not done(p)]
            if pending:
                time.sleep(0.05)
        if pending:
            names = ", ".join(p.name for p in pending)
            raise UserError(f"certificates were swapped but these sidecars did not take them up: {names}")

    return wait


@dataclass(frozen=True)
class IdentityStatus:
    instance: str
    spiffe_id: str
    serial: str
    issuer: str
    not_after: str
    remaining: str
    renew: str | None


def identity_status(state_dir: Path) -> tuple[list[IdentityStatus], list[dict[str, str]]]:
    """Per instance: its certificate, and whether it is due; plus the trusted CAs."""
    plan = load_plan(state_dir)
    store = store_of(state_dir)
    if plan is None or plan.mtls == "off":
        return [], []
    authority = load_authority(plan.security, state_dir / CA_DIR)
    rows = []
    for instance_id, spiffe_id in sorted(plan.identities.items()):
        leaf = _leaf(store, instance_id)
        info = describe(leaf) if leaf is not None else None
        rows.append(
            IdentityStatus(
                instance=instance_id,
                spiffe_id=", ".join(info.uris) if info else spiffe_id,
                serial=info.serial if info else "-",
                issuer=info.issuer if info else "-",
                not_after=f"{info.not_after:%Y-%m-%d %H:%M:%S}Z" if info else "-",
                remaining=_human(info.remaining().total_seconds()) if info else "-",
                renew=renewal_reason(leaf, spiffe_id, authority, tuple(plan.dns_names.get(instance_id, ()))),
            )
        )
    trusted = [
        {"subject": t.subject, "serial": t.serial, "not_after": f"{t.not_after:%Y-%m-%d %H:%M:%S}Z"}
        for t in store.trust()
    ]
    return rows, trusted


def _human(seconds: float) -> str:
    if seconds <= 0:
        return "EXPIRED"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def renew_interval(plan: IdentityPlan) -> float:
    """How often the renewer looks: often enough to renew well before expiry, at most a minute."""
    return max(1.0, min(60.0, plan.leaf_lifetime_ms / 1000 / 20))
