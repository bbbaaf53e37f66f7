"""`meshgen certs`: the local mesh's certificates: status, rotation, and certificates for named clients;
and the rotation of meshgen's CA of an on-prem mesh (whose hosts site.yml then updates)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from meshgen.cli_support import resolve_state_dir, state_dir_option, user_errors
from meshgen.errors import InputError, UserError

if TYPE_CHECKING:  # the CLI imports what a command needs when it runs
    from meshgen.deploy.local.certs import IdentityPlan
    from meshgen.deploy.local.state import MeshState


def _running_plan(state_dir: Path) -> tuple[MeshState, IdentityPlan]:
    from meshgen.deploy.local.certs import load_plan
    from meshgen.deploy.local.state import load_state

    state = load_state(state_dir)
    plan = load_plan(state_dir)
    if state is None:
        raise UserError("no local mesh is running here (see --state-dir)")
    if plan is None or plan.mtls == "off":
        raise UserError(f"mesh {state.mesh} runs without mutual TLS: it has no certificates")
    return state, plan


@click.group()
def certs() -> None:
    """The running local mesh's certificates (status, rotation, certificates for named clients), and
    meshgen's CA of an on-prem mesh (rotate --ca --catalog)."""


@certs.command("status")
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help='Print {"identities": [...], "trusted": [...]}.')
@user_errors
def certs_status(state_dir: Path | None, as_json: bool) -> None:
    """Each sidecar's certificate (SPIFFE ID, serial, expiry, whether it is due) and the trusted CAs."""
    from meshgen.deploy.local.certs import identity_status

    directory = resolve_state_dir(state_dir)
    _running_plan(directory)
    rows, trusted = identity_status(directory)
    if as_json:
        click.echo(json.dumps({"identities": [asdict(r) for r in rows], "trusted": trusted}, indent=2))
        return
    table = [["INSTANCE", "IDENTITY", "SERIAL", "EXPIRES", "LEFT", "RENEW"]]
    table += [[r.instance, r.spiffe_id, r.serial[:16], r.not_after, r.remaining, r.renew or "-"] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    click.echo("")
    for ca in trusted:
        click.echo(f"trusted CA: {ca['subject']} (serial {ca['serial'][:16]}, expires {ca['not_after']})")


@certs.command("rotate")
@state_dir_option
@click.option("--ca", "rotate_ca", is_flag=True, help="Also replace meshgen's CA (trusted side by side first).")
@click.option(
    "--catalog",
    type=click.Path(path_type=Path),
    help="With --ca, no local mesh: replace meshgen's CA of this catalog's on-prem mesh; then run site.yml.",
)
@click.option(
    "--ca-dir",
    type=click.Path(path_type=Path),
    help="With --catalog: where that CA lives (default: $MESHGEN_CA_DIR or ~/.local/share/meshgen/ca/MESH).",
)
@user_errors
def certs_rotate(state_dir: Path | None, rotate_ca: bool, catalog: Path | None, ca_dir: Path | None) -> None:
    """Give every sidecar a new certificate now, live: no restart, no dropped connection.

    With --ca --catalog CATALOG: a new CA for the on-prem mesh of CATALOG, the old one still trusted
    until the certificates it signed have expired. Then run ansible/site.yml on every mesh host: it
    installs the new trust bundle everywhere first, then new certificates.
    """
    from meshgen.deploy.local.certs import ensure_identities, wait_for_envoys

    if catalog is not None or ca_dir is not None:
        _rotate_onprem_ca(rotate_ca, catalog, ca_dir)
        return
    directory = resolve_state_dir(state_dir)
    state, plan = _running_plan(directory)
    envoys = [p for p in state.processes if p.kind == "envoy"]
    renewal = ensure_identities(directory, plan, renew_all=True, rotate_ca=rotate_ca, wait=wait_for_envoys(envoys))
    what = "a new CA and " if rotate_ca else ""
    click.echo(f"rotated: {what}{len(renewal.issued)} sidecar certificates, in use by every running Envoy")


def _rotate_onprem_ca(rotate_ca: bool, catalog: Path | None, ca_dir: Path | None) -> None:
    from meshgen.cli_support import load_catalog
    from meshgen.pki.authority import default_ca_dir, has_own_authority, rotate_own_authority

    if catalog is None:
        raise InputError("--ca-dir needs --catalog: the trust domain and lifetimes come from the catalog")
    if not rotate_ca:
        raise InputError(
            "--catalog rotates meshgen's CA of an on-prem mesh: add --ca (site.yml renews sidecar certificates: "
            "-e envoy_tls_rotate=true)"
        )
    mesh = load_catalog(catalog)
    security = mesh.security
    if not security.enabled:
        raise InputError(f"{catalog}: mesh.security.mtls is off: the mesh has no CA")
    if security.ca_cert:
        raise InputError(f"{catalog}: the catalog names its own CA (mesh.security.ca): rotate that CA yourself")
    directory = (ca_dir or default_ca_dir(mesh.name)).absolute()
    if not has_own_authority(directory):
        raise UserError(f"no CA of meshgen in {directory}: `meshgen generate --target onprem` creates it")
    authority = rotate_own_authority(directory, security.trust_domain, security.ca_lifetime, security.leaf_lifetime)
    click.echo(
        f"{directory}: a new CA signs from now on; {len(authority.bundle)} CAs trusted (trust.pem). "
        "Run ansible/site.yml on every mesh host: trust first, then new certificates, everywhere."
    )


@certs.command("issue-client")
@click.argument("name")
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), required=True, help="Directory for cert.pem, key.pem, ca.pem."
)
@click.option("--lifetime", default="24h", show_default=True, help="How long the certificate is valid.")
@state_dir_option
@user_errors
def certs_issue_client(name: str, out: Path, lifetime: str, state_dir: Path | None) -> None:
    """A certificate for NAME, a client outside the mesh (spiffe://TRUST_DOMAIN/client/NAME).

    Services admit it only where an authorization rule names it under `clients`.
    """
    from meshgen.deploy.local.certs import CA_DIR
    from meshgen.durations import Duration
    from meshgen.pki.authority import load_authority
    from meshgen.pki.certificates import cert_pem, key_pem
    from meshgen.pki.store import write_private

    directory = resolve_state_dir(state_dir)
    _, plan = _running_plan(directory)
    try:
        validity = Duration.parse(lifetime)
    except ValueError as exc:
        raise InputError(f"--lifetime: {exc}") from None
    security = plan.security
    authority = load_authority(security, directory / CA_DIR)
    leaf, key = authority.issue(security.client_id(name), validity)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    for file in ("key.pem", "cert.pem", "ca.pem"):
        (out / file).unlink(missing_ok=True)
    write_private(out / "key.pem", key_pem(key))
    write_private(out / "cert.pem", b"".join(cert_pem(c) for c in [leaf, *authority.chain]), 0o644)
    write_private(out / "ca.pem", b"".join(cert_pem(c) for c in authority.bundle), 0o644)
    click.echo(f"{out}: certificate for {security.client_id(name)} (cert.pem, key.pem 0600, ca.pem)")
