"""Security: mutual TLS and authorization, as the catalog declares them, against the live mesh.

Per service: plaintext is refused where mutual TLS is strict (accepted where it is permissive,
or from outside for an edge service, within its rules); a certificate from another CA is
refused; every mesh identity the catalog does not admit gets 403 (TCP: the connection closed);
a caller admitted for some methods or paths only gets 403 outside them; the callee presents its
own SPIFFE ID. Per declared dependency: the call through the caller's sidecar answers. A mesh
that lets through a caller the catalog forbids fails. Minting identities needs the mesh CA's key;
without it those checks are skipped with that reason.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from meshgen.model.authorization import OUTSIDE, Grant, by_principal, grants, outside_grants
from meshgen.model.mesh import Instance, Mesh, Service
from meshgen.pki.authority import Authority
from meshgen.render.envoy.security import takes_plaintext
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped
from meshgen.verify.http import send
from meshgen.verify.mtls import Credentials, TlsReply, foreign_authority, https_request, mint, plain_line, tls_line
from meshgen.verify.targets import Caller, inbound_address, instance_calling, runs_own_app

KIND = "security"


def _request_outside(grant: Grant) -> tuple[str, str] | None:
    """A method and path the grant does not cover, or None when it covers everything."""
    if grant.unrestricted:
        return None
    if grant.methods:
        other = next(m for m in ("DELETE", "PATCH", "PUT", "POST", "GET") if m not in grant.methods)
        return other, grant.paths[0] if grant.paths else "/"
    return "GET", "/meshgen-verify-outside-the-rules"


def _request_inside(grant: Grant) -> tuple[str, str]:
    return (grant.methods[0] if grant.methods else "GET", grant.paths[0] if grant.paths else "/")


def _call(service: Service, instance: Instance, credentials: Credentials, method: str, path: str) -> TlsReply:
    address, port = inbound_address(instance)
    if service.is_http:
        return https_request(address, port, service.name, credentials, method=method, path=path)
    return tls_line(address, port, service.name, credentials)


def _outcome(reply: TlsReply) -> str:
    if not reply.handshake:
        return f"refused in the TLS handshake ({reply.error[:80]})" if reply.error else "refused in the TLS handshake"
    if reply.reply.status == 0:
        return "connection closed without an answer"
    return f"answered {reply.reply.status}"


def _refused(service: Service, reply: TlsReply) -> bool:
    """Authorization said no: the sidecar's own 403 for HTTP, a closed connection for TCP."""
    if service.is_http:
        return reply.reply.status == 403 and not reply.reply.from_upstream
    return reply.handshake and reply.reply.status == 0


def _admitted(service: Service, reply: TlsReply) -> bool:
    """The app answered, whatever it answered: the sidecar let the request (or connection) through."""
    if service.is_http:
        return reply.handshake and reply.reply.from_upstream
    return reply.handshake and reply.reply.status != 0


def _plaintext(mesh: Mesh, service: Service, instance: Instance) -> Iterator[Outcome]:
    address, port = inbound_address(instance)
    name = f"{service.name}: plaintext"
    if not service.is_http:
        if runs_own_app(service):
            yield Skipped(KIND, name, f"{service.name} runs its own TCP app: only the demo app echoes a line back")
            return
        # A TLS listener answers plaintext with an alert record: only the app's echo is an answer.
        answered = service.name in plain_line(address, port)
        expected = takes_plaintext(mesh, service)
        yield CheckResult(
            KIND, name, answered == expected, f"a plaintext connection {'was' if answered else 'was not'} answered"
        )
        return
    if not takes_plaintext(mesh, service):
        reply = send(address, port, "/", headers={"Host": service.name}, timeout=5)
        yield CheckResult(
            KIND, name, reply.status == 0, f"plaintext HTTP {_plain_outcome(reply.status)} (strict: refused)"
        )
        return
    outside = outside_grants(grants(mesh, service))
    if mesh.security.mtls == "permissive" or any(g.unrestricted for g in outside):
        reply = send(address, port, "/", headers={"Host": service.name}, timeout=5)
        why = "permissive" if mesh.security.mtls == "permissive" else "callers from outside may call it"
        yield CheckResult(KIND, name, reply.from_upstream, f"plaintext HTTP {_plain_outcome(reply.status)} ({why})")
        return
    if not outside:
        reply = send(address, port, "/", headers={"Host": service.name}, timeout=5)
        yield CheckResult(
            KIND,
            name,
            reply.status == 403 and not reply.from_upstream,
            f"plaintext HTTP {_plain_outcome(reply.status)} (no rule admits outside callers)",
        )
        return
    for grant in outside:
        method, path = _request_inside(grant)
        inside = send(address, port, path, headers={"Host": service.name}, method=method, timeout=5)
        outside_request = _request_outside(grant)
        assert outside_request is not None
        method_out, path_out = outside_request
        beyond = send(address, port, path_out, headers={"Host": service.name}, method=method_out, timeout=5)
        ok = inside.from_upstream and beyond.status == 403 and not beyond.from_upstream
        yield CheckResult(
            KIND,
            f"{name} from outside",
            ok,
            f"{method} {path}: {_plain_outcome(inside.status)}; "
            f"{method_out} {path_out}: {_plain_outcome(beyond.status)} (outside callers: {grant.describe()})",
        )


def _plain_outcome(status: int) -> str:
    return "got no answer" if status == 0 else f"answered {status}"


def _identities(mesh: Mesh, service: Service, authority: Authority, scratch: Path) -> Iterator[Outcome]:
    security = mesh.security
    instance = service.instances[0]
    expected_peer = (security.service_id(service.name),)
    granted = by_principal(grants(mesh, service))
    trust = authority.bundle

    # Only the CA is wrong: the identity is one the service admits, or any if it admits none.
    some_caller = next(iter(sorted(granted)), security.service_id("meshgen-verify"))
    stranger = foreign_authority(security.trust_domain)
    reply = _call(service, instance, mint(stranger, some_caller, trust, scratch), "GET", "/")
    yield CheckResult(
        KIND,
        f"{service.name}: certificate from another CA",
        not _admitted(service, reply) and reply.reply.status == 0,
        f"{some_caller} signed by {stranger.source}: {_outcome(reply)}",
    )

    # Every mesh identity the catalog does not admit, each a request of its own.
    intruders = [security.service_id(s.name) for s in mesh.services if security.service_id(s.name) not in granted]
    intruders = intruders or [security.service_id("meshgen-verify")]
    let_through = []
    for intruder in intruders:
        reply = _call(service, instance, mint(authority, intruder, trust, scratch), "GET", "/")
        peer_ok = not reply.peer_ids or reply.peer_ids == expected_peer
        if not (_refused(service, reply) and peer_ok):
            wrong_peer = "" if peer_ok else f", the server presenting {', '.join(reply.peer_ids)}"
            let_through.append(f"{intruder}: {_outcome(reply)}{wrong_peer}")
    names = ", ".join(i.rsplit("/", 1)[-1] for i in intruders)
    refusal = "403" if service.is_http else "connection closed"
    yield CheckResult(
        KIND,
        f"{service.name}: refuses whom it does not admit",
        not let_through,
        "; ".join(let_through) if let_through else f"{len(intruders)} identities refused ({refusal}): {names}",
    )

    for principal, group in sorted(granted.items()):
        credentials = mint(authority, principal, trust, scratch)
        for grant in group:
            method, path = _request_inside(grant)
            inside = _call(service, instance, credentials, method, path)
            detail = f"{principal} ({grant.describe()}): {method} {path} {_outcome(inside)}"
            passed = _admitted(service, inside) and inside.peer_ids == expected_peer
            if inside.peer_ids != expected_peer:
                detail += (
                    f"; the server presented {', '.join(inside.peer_ids) or 'nothing'}, expected {expected_peer[0]}"
                )
            outside_request = _request_outside(grant) if service.is_http else None
            if outside_request is not None and not any(g.unrestricted for g in group):
                method_out, path_out = outside_request
                beyond = _call(service, instance, credentials, method_out, path_out)
                passed = passed and _refused(service, beyond)
                detail += f"; {method_out} {path_out} {_outcome(beyond)}"
            yield CheckResult(KIND, f"{service.name}: admits {grant.caller}", passed, detail)


def _declared_edges(mesh: Mesh) -> Iterator[Outcome]:
    """Every dependency answers through its caller's sidecar: identities and RBAC let it through."""
    for caller in mesh.services:
        for dependency in caller.dependencies:
            calling = instance_calling(caller, dependency.target)
            if dependency.external or calling is None:
                continue
            sidecar = Caller(calling)
            callee = mesh.service(dependency.target)
            grant = next((g for g in grants(mesh, callee) if g.caller == caller.name), None)
            if grant is None:
                continue  # a rule narrowed it out: the refusal is checked at the callee
            name = f"{caller.name} -> {callee.name}"
            listener = dependency.listener(sidecar.instance.host)
            if not dependency.is_http and listener is not None:
                if runs_own_app(callee):
                    yield Skipped(KIND, name, f"{callee.name} runs its own TCP app: only the demo app echoes")
                    continue
                answer = plain_line(*listener)
                yield CheckResult(
                    KIND,
                    name,
                    callee.name in answer,
                    f"through {caller.name}'s sidecar: {answer.strip()[:80] or 'no answer'}",
                )
                continue
            method, path = _request_inside(grant)
            address, port = sidecar.outbound
            reply = send(address, port, path, headers={"Host": callee.name}, method=method, timeout=10)
            # Through two sidecars, the callee's 403 arrives as an upstream's answer: an app of its
            # own may answer anything but that (and no 5xx of a failed hop).
            answered = reply.status == 200 or (runs_own_app(callee) and 0 < reply.status < 500 and reply.status != 403)
            yield CheckResult(
                KIND,
                name,
                answered,
                f"{method} {path} through {caller.name}'s sidecar: {_plain_outcome(reply.status)}",
            )


def check_security(mesh: Mesh, authority: Authority | None = None) -> Iterator[Outcome]:
    if not mesh.security.enabled:
        yield Skipped(KIND, "mutual TLS", "mtls is off: no identities, no authorization")
        return
    with tempfile.TemporaryDirectory(prefix="meshgen-verify-") as scratch:
        for service in mesh.services:
            if not service.instances:
                continue
            yield from _plaintext(mesh, service, service.instances[0])
            if authority is None:
                yield Skipped(
                    KIND, f"{service.name}: identities", "no mesh CA key here to mint test identities (--ca-dir)"
                )
                continue
            yield from _identities(mesh, service, authority, Path(scratch))
    yield from _declared_edges(mesh)


__all__ = ["OUTSIDE", "check_security"]
