"""`meshgen aws certs`: the identities of an ecs-envoy mesh on AWS, in Secrets Manager."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from meshgen.cli_support import user_errors
from meshgen.errors import UserError

if TYPE_CHECKING:  # the CLI imports what a command needs when it runs
    from meshgen.deploy.aws.identities import Identities, Report
    from meshgen.model.mesh import Mesh
    from meshgen.pki.authority import Authority

ca_dir_option = click.option(
    "--ca-dir",
    type=click.Path(path_type=Path),
    help="meshgen's own CA for this mesh, created on first use (default: $MESHGEN_CA_DIR or "
    "~/.local/share/meshgen/ca/MESH); unused when the catalog names its own CA.",
)
region_option = click.option("--region", help="AWS region (default: from the environment).")


def authority_for(mesh: Mesh, ca_dir: Path | None) -> Authority:
    from meshgen.pki.authority import default_ca_dir, load_authority

    return load_authority(mesh.security, ca_dir or default_ca_dir(mesh.name))


def run_on_aws(action: Callable[[], Report]) -> Report:
    """AWS failures are run-time failures (exit 1), named as such."""
    import botocore.exceptions

    try:
        return action()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise UserError(f"AWS: {exc}") from None


def push_identities(identities: Identities, authority: Authority) -> Report:
    report = run_on_aws(lambda: identities.push(authority))
    for issued in report.issued:
        click.echo(f"pushed {issued.describe()}")
    return report


@click.group("certs")
def aws_certs() -> None:
    """Certificates of an ecs-envoy mesh: one per service, in AWS Secrets Manager, read by each task at start."""


def _identities(catalog: Path, region: str | None) -> tuple[Mesh, Identities]:
    import boto3

    from meshgen.cli_support import load_catalog
    from meshgen.deploy.aws.identities import Identities

    mesh = load_catalog(catalog)
    return mesh, Identities(mesh, boto3.session.Session(region_name=region))


@aws_certs.command("push")
@click.argument("catalog", type=click.Path(path_type=Path))
@ca_dir_option
@region_option
@user_errors
def certs_push(catalog: Path, ca_dir: Path | None, region: str | None) -> None:
    """Issue a certificate for every service whose secret holds none yet (after an apply that added services).

    `meshgen aws apply` does this itself; with plain Terraform, run it between
    `terraform apply -target=module.mesh` and `terraform apply`.
    """
    mesh, identities = _identities(catalog, region)
    report = push_identities(identities, authority_for(mesh, ca_dir))
    if report.unchanged:
        click.echo(f"{len(report.unchanged)} services already hold a certificate (`meshgen aws certs rotate` renews)")


@aws_certs.command("rotate")
@click.argument("catalog", type=click.Path(path_type=Path))
@ca_dir_option
@region_option
@user_errors
def certs_rotate(catalog: Path, ca_dir: Path | None, region: str | None) -> None:
    """New certificates for every service, then a rolling deployment of every ECS service.

    Tasks read their certificate once, at start: run this at least every half leaf lifetime
    (from a scheduler), so that no running task holds an expired certificate.
    """
    mesh, identities = _identities(catalog, region)
    authority = authority_for(mesh, ca_dir)
    report = run_on_aws(lambda: identities.rotate(authority))
    for issued in report.issued:
        click.echo(f"rotated {issued.describe()}")
    click.echo(f"rolling deployments started: {', '.join(report.restarted)}")
    if report.trust_only:
        click.echo(
            "step 1 of 2: the mesh's CA changed, so only the trust bundles grew; run `meshgen aws certs rotate` "
            "again once these deployments have finished, to issue certificates from the new CA"
        )
    else:
        from meshgen.durations import Duration

        lifetime = mesh.security.leaf_lifetime
        click.echo(f"rotate again within {Duration(lifetime.ms // 2)} (half the leaf lifetime, {lifetime})")
