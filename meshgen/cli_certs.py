"""`meshgen certs`: the local mesh's certificates: status, rotation, and certificates for named clients."""

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
    """The running local mesh's certificates: status, rotation, certificates for named clients."""


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
@user_errors
def certs_rotate(state_dir: Path | None, rotate_ca: bool) -> None:
    """Give every sidecar a new certificate now, live: no restart, no dropped connection."""
    from meshgen.deploy.local.certs import ensure_identities, wait_for_envoys

    directory = resolve_state_dir(state_dir)
    state, plan = _running_plan(directory)
    envoys = [p for p in state.processes if p.kind == "envoy"]
    renewal = ensure_identities(directory, plan, renew_all=True, rotate_ca=rotate_ca, wait=wait_for_envoys(envoys))
    what = "a new CA and " if rotate_ca else ""
    click.echo(f"rotated: {what}{len(renewal.issued)} sidecar certificates, in use by every running Envoy")


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
