"""Lint of the security settings: what weakens the mesh's zero trust without being an error."""

from __future__ import annotations

from meshgen.analysis.findings import Finding
from meshgen.model.authorization import declared_callers
from meshgen.model.mesh import Mesh

MAX_LEAF_LIFETIME_DAYS = 90


def _mode(mesh: Mesh) -> list[Finding]:
    mode = mesh.security.mtls
    if mode == "off":
        return [
            Finding(
                check="mtls",
                subject="mesh.security.mtls",
                message="mutual TLS is off: calls between sidecars are plaintext, with no identity and no "
                "authorization; any process that reaches a sidecar reaches its app",
                severity="warning",
            )
        ]
    if mode == "permissive":
        return [
            Finding(
                check="mtls",
                subject="mesh.security.mtls",
                message="mutual TLS is permissive: plaintext is still accepted, and authorization applies to "
                "mutual-TLS calls only; set strict once every sidecar runs permissive",
                severity="warning",
            )
        ]
    return []


def _lifetime(mesh: Mesh) -> list[Finding]:
    days = mesh.security.leaf_lifetime.ms / 86_400_000
    if mesh.security.enabled and days > MAX_LEAF_LIFETIME_DAYS:
        return [
            Finding(
                check="cert-lifetime",
                subject="mesh.security.leaf_lifetime",
                message=f"sidecar certificates live {days:g} days: a stolen key stays useful that long; "
                f"keep them at {MAX_LEAF_LIFETIME_DAYS} days or less (the default, 24h, renews itself)",
                severity="warning",
                details={"days": days, "max_days": MAX_LEAF_LIFETIME_DAYS},
            )
        ]
    return []


def _rules(mesh: Mesh) -> list[Finding]:
    findings = []
    known = {s.name for s in mesh.services} | {g.name for g in mesh.gateways}
    for service in mesh.services:
        callers = (*declared_callers(mesh, service), *(g.name for g in mesh.gateways_to(service.name)))
        if service.authorization is not None and not mesh.security.enabled:
            findings.append(
                Finding(
                    check="authorization",
                    subject=service.name,
                    message="authorization rules are not enforced with mutual TLS off: nobody has an identity",
                    severity="warning",
                )
            )
        for index, rule in enumerate(service.authorization or ()):
            for name in rule.callers:
                where = f"{service.name} authorization[{index}]"
                if name not in known:
                    findings.append(
                        Finding(
                            check="authorization",
                            subject=where,
                            message=f"names {name!r}, which is no service or gateway of the catalog",
                        )
                    )
                elif name not in callers:
                    findings.append(
                        Finding(
                            check="authorization",
                            subject=where,
                            message=f"names {name}, which does not declare {service.name} as a dependency (nor "
                            "routes to it): rules only narrow, so it is never admitted",
                            severity="warning",
                        )
                    )
        if service.edge and mesh.security.enabled and not any(r.outside for r in service.authorization or ()):
            findings.append(
                Finding(
                    check="authorization",
                    subject=service.name,
                    message="edge service without a rule for callers from outside the mesh: "
                    + (
                        "none is admitted (add a rule with outside: true)"
                        if service.authorization is not None
                        else "any of them may call it anything; say which methods and paths they may use "
                        "with a rule `outside: true`"
                    ),
                    severity="warning",
                )
            )
    return findings


def _externals(mesh: Mesh) -> list[Finding]:
    return [
        Finding(
            check="external-tls",
            subject=f"{external.name} (external)",
            message=f"calls to {external.address}:{external.port} leave the mesh in plaintext; set tls: true",
            severity="warning",
        )
        for external in mesh.externals
        if not external.tls
    ]


def security_findings(mesh: Mesh) -> list[Finding]:
    return [*_mode(mesh), *_lifetime(mesh), *_rules(mesh), *_externals(mesh)]
