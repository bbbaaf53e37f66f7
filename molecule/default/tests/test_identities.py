"""Each sidecar's identity on its host: the key is the Envoy user's alone, the certificate carries
the sidecar's SPIFFE ID from the mesh CA on the controller, the trust bundle is the controller's,
and the running Envoy presents and trusts exactly those files."""

from __future__ import annotations

from pathlib import Path

from conftest import authority, ca_dir, host_vars, journal
from cryptography import x509

from meshgen.deploy.admin import certificates_in_use
from meshgen.pki.certificates import describe, load_certs, signed_by

testinfra_hosts = ["mesh"]

TLS_ROOT = "/etc/meshgen/tls"


def _sidecars(host) -> list[dict[str, str]]:
    sidecars = host_vars(host).get("envoy_sidecars", [])
    assert sidecars, f"{host.backend.get_hostname()} has no sidecars"
    return sidecars


def _mode_and_owner(host, path: str) -> tuple[str, str, str]:
    mode, user, group = host.check_output(f"stat -c '%a %U %G' {path}").split()
    return mode, user, group


def _certificate(host, sidecar: str) -> x509.Certificate:
    path = f"{TLS_ROOT}/{sidecar}/current/cert.pem"
    return load_certs(host.file(path).content, path)[0]


def test_keys_and_their_directories_are_the_envoy_users_alone(host):
    for sidecar in _sidecars(host):
        identity = f"{TLS_ROOT}/{sidecar['name']}"
        generations = host.check_output(f"find {identity} -mindepth 1 -maxdepth 1 -type d").split()
        assert generations, f"{identity} holds no generation"
        for directory in [identity, *generations]:
            assert _mode_and_owner(host, directory) == ("700", "envoy", "envoy"), directory
        for key in host.check_output(f"find {identity} -name key.pem").split():
            assert _mode_and_owner(host, key) == ("600", "envoy", "envoy"), key
        assert host.file(f"{identity}/current").is_symlink
        assert host.file(f"{identity}/current/key.pem").exists


def test_at_most_one_previous_generation_is_kept(host):
    for directory in [f"{TLS_ROOT}/trust", *(f"{TLS_ROOT}/{s['name']}" for s in _sidecars(host))]:
        generations = host.check_output(f"find {directory} -mindepth 1 -maxdepth 1 -type d").split()
        assert 1 <= len(generations) <= 2, generations


def test_certificates_carry_the_sidecar_identity_signed_by_the_mesh_ca(host):
    signer = authority().cert
    for sidecar in _sidecars(host):
        certificate = _certificate(host, sidecar["name"])
        info = describe(certificate)
        assert info.uris == (sidecar["spiffe_id"],), info
        assert not info.is_ca
        assert signed_by(certificate, signer), f"{sidecar['name']}: issued by {info.issuer}, not {signer.subject}"
        assert not info.past_half_life(), info


def test_the_trust_bundle_is_the_controller_one(host):
    bundle = host.file(f"{TLS_ROOT}/trust/current/ca.pem")
    assert bundle.content == (ca_dir() / "trust.pem").read_bytes()
    assert _mode_and_owner(host, f"{TLS_ROOT}/trust") == ("750", "root", "envoy")
    assert bundle.mode == 0o644


def test_envoy_presents_and_trusts_the_installed_files(host):
    trusted = {c.serial_number for c in load_certs(Path(ca_dir() / "trust.pem").read_bytes(), "trust.pem")}
    for sidecar in _sidecars(host):
        in_use = certificates_in_use(sidecar["admin"])
        unit = f"envoy@{sidecar['name']}.service"
        assert in_use is not None, journal(host, unit)
        leaves, authorities = in_use
        assert leaves == {_certificate(host, sidecar["name"]).serial_number}, journal(host, unit)
        assert authorities == trusted, journal(host, unit)


def test_the_sandbox_lets_envoy_read_the_tls_root_only(host):
    for sidecar in _sidecars(host):
        unit = f"envoy@{sidecar['name']}.service"
        read_only = host.check_output(f"systemctl show --property ReadOnlyPaths --value {unit}")
        assert TLS_ROOT in read_only, read_only
