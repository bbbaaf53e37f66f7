"""Mutual TLS and authorization: SDS secrets from watched files, TLS contexts, RBAC filters.

Each sidecar presents its service's SPIFFE ID (a URI SAN) and trusts the mesh CA bundle, both
delivered by SDS from files Envoy watches: rotation is a file swap, with no restart and no dropped
connection. Callers check the callee's SPIFFE ID; callees admit exactly the grants of
`meshgen.model.authorization`, with RBAC in DENY mode so that the access log names the policy
that refused a call (`rbac_access_denied_matched_policy[<policy>]`).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from meshgen.model.authorization import Grant, by_principal, grants, outside_grants
from meshgen.model.mesh import Mesh, Service
from meshgen.render.envoy import names
from meshgen.render.envoy.layout import SidecarPaths

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
_TLS = "envoy.transport_sockets.tls"
_TLS_TYPES = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
_HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
_NETWORK_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
HTTP_RBAC_FILTER = "envoy.filters.http.rbac"
NETWORK_RBAC_FILTER = "envoy.filters.network.rbac"
TLS_INSPECTOR = {
    "name": "envoy.filters.listener.tls_inspector",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
}
# Both ends are Envoys of this mesh: TLS 1.3 only (Envoy clients stop at 1.2 unless told otherwise).
_TLS_PARAMS = {"tls_minimum_protocol_version": "TLSv1_3", "tls_maximum_protocol_version": "TLSv1_3"}
DEFAULT_DENY = "default-deny"


def identity_secret(paths: SidecarPaths) -> dict[str, Any]:
    return {
        "name": names.IDENTITY_SECRET,
        "tls_certificate": {
            "certificate_chain": {"filename": str(paths.cert)},
            "private_key": {"filename": str(paths.key)},
            # The `current` symlink is swapped by one rename in this directory: Envoy then reads the
            # certificate and key together, so it never pairs one generation's key with another's.
            "watched_directory": {"path": str(paths.identity_dir)},
        },
    }


def trust_secret(paths: SidecarPaths) -> dict[str, Any]:
    return {
        "name": names.TRUST_SECRET,
        "validation_context": {
            "trusted_ca": {"filename": str(paths.trust_bundle)},
            "watched_directory": {"path": str(paths.trust_dir)},
        },
    }


def _sds(name: str, paths: SidecarPaths) -> dict[str, Any]:
    path = paths.file(names.SDS_FILES[name])
    return {"name": name, "sds_config": {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"}}


def _alpn(protocol: str) -> list[str]:
    return ["h2"] if protocol in ("http2", "grpc") else []


def upstream_tls(mesh: Mesh, callee: Service, paths: SidecarPaths) -> dict[str, Any]:
    """The caller's side: present this sidecar's identity, accept only the callee's."""
    context: dict[str, Any] = {
        "tls_params": _TLS_PARAMS,
        "tls_certificate_sds_secret_configs": [_sds(names.IDENTITY_SECRET, paths)],
        "combined_validation_context": {
            "default_validation_context": {
                "match_typed_subject_alt_names": [
                    {"san_type": "URI", "matcher": {"exact": mesh.security.service_id(callee.name)}}
                ]
            },
            "validation_context_sds_secret_config": _sds(names.TRUST_SECRET, paths),
        },
    }
    if _alpn(callee.protocol):
        context["alpn_protocols"] = _alpn(callee.protocol)
    return {
        "name": _TLS,
        "typed_config": {"@type": _TLS_TYPES + "UpstreamTlsContext", "sni": callee.name, "common_tls_context": context},
    }


def downstream_tls(service: Service, paths: SidecarPaths) -> dict[str, Any]:
    """The callee's side: present this sidecar's identity, require a certificate of the mesh CA."""
    context: dict[str, Any] = {
        "tls_params": _TLS_PARAMS,
        "tls_certificate_sds_secret_configs": [_sds(names.IDENTITY_SECRET, paths)],
        "validation_context_sds_secret_config": _sds(names.TRUST_SECRET, paths),
    }
    if service.is_http:
        context["alpn_protocols"] = ["h2", "http/1.1"] if _alpn(service.protocol) else ["http/1.1"]
    return {
        "name": _TLS,
        "typed_config": {
            "@type": _TLS_TYPES + "DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": context,
        },
    }


def tls_secret(name: str, cert: PurePosixPath, key: PurePosixPath) -> dict[str, Any]:
    """A certificate and key the catalog names (a gateway's HTTPS certificate); replaced files
    are picked up when they are moved into place (Envoy watches their directory)."""
    return {
        "name": name,
        "tls_certificate": {
            "certificate_chain": {"filename": str(cert)},
            "private_key": {"filename": str(key)},
            "watched_directory": {"path": str(cert.parent)},
        },
    }


def served_certificate(secret: str, sds_file: PurePosixPath) -> dict[str, Any]:
    """HTTPS for callers from outside: the secret's certificate, no client certificate asked for,
    TLS 1.2 or later (browsers and curl, not only Envoys)."""
    source = {
        "name": secret,
        "sds_config": {"path_config_source": {"path": str(sds_file)}, "resource_api_version": "V3"},
    }
    return {
        "name": _TLS,
        "typed_config": {
            "@type": _TLS_TYPES + "DownstreamTlsContext",
            "common_tls_context": {
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "tls_certificate_sds_secret_configs": [source],
                "alpn_protocols": ["h2", "http/1.1"],
            },
        },
    }


def takes_plaintext(mesh: Mesh, service: Service) -> bool:
    """The inbound listener also accepts plaintext: callers from outside (edge), or a migration."""
    return mesh.security.mtls == "permissive" or service.edge


def _principal(spiffe_id: str) -> dict[str, Any]:
    return {"authenticated": {"principal_name": {"exact": spiffe_id}}}


def _permission(grant: Grant) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if grant.methods:
        methods = [{"header": {"name": ":method", "string_match": {"exact": m}}} for m in grant.methods]
        parts.append(methods[0] if len(methods) == 1 else {"or_rules": {"rules": methods}})
    if grant.paths:
        prefixes = [{"url_path": {"path": {"prefix": p}}} for p in grant.paths]
        parts.append(prefixes[0] if len(prefixes) == 1 else {"or_rules": {"rules": prefixes}})
    if not parts:
        return {"any": True}
    return parts[0] if len(parts) == 1 else {"and_rules": {"rules": parts}}


def _outside_their_rules(group: tuple[Grant, ...]) -> dict[str, Any] | None:
    """Permissions a caller's grants do not cover; None when one grant covers everything."""
    if any(g.unrestricted for g in group):
        return None
    allowed = [_permission(g) for g in group]
    return {"not_rule": allowed[0] if len(allowed) == 1 else {"or_rules": {"rules": allowed}}}


def _policy_name(caller: str) -> str:
    return f"{caller.replace(' ', '-')}-outside-its-rules"


def mtls_policies(mesh: Mesh, service: Service) -> dict[str, Any]:
    """DENY policies for callers with a mesh identity: anyone not granted, then each granted caller
    for what its rules do not cover. Whatever no policy matches is a call the catalog allows."""
    grouped = by_principal(grants(mesh, service))
    admitted = [_principal(p) for p in sorted(grouped)]
    anyone_else: dict[str, Any]
    if admitted:
        anyone_else = {"not_id": admitted[0] if len(admitted) == 1 else {"or_ids": {"ids": admitted}}}
    else:
        anyone_else = {"any": True}
    policies: dict[str, Any] = {DEFAULT_DENY: {"permissions": [{"any": True}], "principals": [anyone_else]}}
    for principal, group in sorted(grouped.items()):
        uncovered = _outside_their_rules(group)
        if uncovered is not None:
            policies[_policy_name(group[0].caller)] = {
                "permissions": [uncovered],
                "principals": [_principal(principal)],
            }
    return policies


def plaintext_policies(mesh: Mesh, service: Service) -> dict[str, Any] | None:
    """DENY policies for the plaintext chain; None when it admits everything (a permissive
    migration, where plaintext cannot be authorized, or outside callers without narrowing rules)."""
    if mesh.security.mtls == "permissive":
        return None
    outside = outside_grants(grants(mesh, service))
    if not outside:
        return {DEFAULT_DENY: {"permissions": [{"any": True}], "principals": [{"any": True}]}}
    uncovered = _outside_their_rules(outside)
    if uncovered is None:
        return None
    return {_policy_name("outside"): {"permissions": [uncovered], "principals": [{"any": True}]}}


def http_rbac(policies: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": HTTP_RBAC_FILTER,
        "typed_config": {"@type": _HTTP_RBAC, "rules": {"action": "DENY", "policies": policies}},
    }


def network_rbac(policies: dict[str, Any], stat_prefix: str) -> dict[str, Any]:
    return {
        "name": NETWORK_RBAC_FILTER,
        "typed_config": {
            "@type": _NETWORK_RBAC,
            "stat_prefix": stat_prefix,
            "rules": {"action": "DENY", "policies": policies},
        },
    }


def sds_resources(paths: SidecarPaths) -> dict[str, list[dict[str, Any]]]:
    """SDS file name -> the one secret it holds."""
    return {
        names.SDS_FILES[names.IDENTITY_SECRET]: [identity_secret(paths)],
        names.SDS_FILES[names.TRUST_SECRET]: [trust_secret(paths)],
    }
