"""The `meshgen` command line.

User errors are caught here and nowhere else: printed to stderr, exit code from the error
(2 for wrong input, the catalog or an option; 1 for failures at run time; see meshgen.errors).
Every command reads the catalog through `load_catalog`, which warns about deprecated spellings.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
from dataclasses import dataclass
from functools import wraps
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import click

from meshgen import __version__
from meshgen.cli_aws_certs import aws_certs
from meshgen.cli_certs import certs
from meshgen.cli_support import (
    F,
    emit_json,
    json_option,
    load_catalog,
    progress,
    resolve_state_dir,
    state_dir_option,
    user_errors,
    without_cycle_collection,
)
from meshgen.errors import CatalogError, InputError, UserError

if TYPE_CHECKING:  # the CLI imports what a command needs when it runs
    from collections.abc import Callable, Iterator

    from meshgen.model import Mesh
    from meshgen.render.envoy.incremental import Shape
    from meshgen.render.output import Changes

catalog_argument = click.argument("catalog", type=click.Path(path_type=Path))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meshgen")
@click.pass_context
def main(ctx: click.Context) -> None:
    """One service catalog in, a working, verified service mesh out.

    Shell completion: eval "$(_MESHGEN_COMPLETE=bash_source meshgen)" (zsh_source, fish_source).
    """
    # meshgen prints no colour of its own; NO_COLOR (no-color.org) also turns off any styling click
    # would add, which it already drops when the output is not a terminal.
    if os.environ.get("NO_COLOR"):
        ctx.color = False


@main.command()
def schema() -> None:
    """Print the catalog's JSON Schema (for editors and CI)."""
    from meshgen.catalog.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@main.command()
@catalog_argument
@click.option("--envoy", "check_envoy", is_flag=True, help="Also have the real Envoy validate every sidecar config.")
@json_option
@user_errors
def validate(catalog: Path, check_envoy: bool, as_json: bool) -> None:
    """Check a catalog; exit 2 with every problem listed if it is invalid."""
    mesh = load_catalog(catalog)
    checked = None
    if check_envoy:
        from meshgen.render.envoy.check import check_with_envoy

        checked = check_with_envoy(mesh)
    instances = len(mesh.instances)
    if as_json:
        emit_json(
            {
                "catalog": str(catalog),
                "valid": True,
                "mesh": mesh.name,
                "services": len(mesh.services),
                "sidecars": instances,
                "gateways": _gateway_count(mesh),
                "envoy_validated": checked,
            }
        )
        return
    by_envoy = f"; Envoy accepted all {checked}" if checked is not None else ""
    gateways = _gateway_envoys(mesh)
    click.echo(
        f"{catalog}: valid: mesh {mesh.name}, {len(mesh.services)} services, {instances} sidecars{gateways}{by_envoy}"
    )


@dataclass(frozen=True)
class TargetOptions:
    """What to generate and how; shared by `generate` and `diff`."""

    target: str
    config_root: str | None
    tls_root: str | None
    flavor: str
    tracing: str
    namespace: str | None
    default_image: str | None
    modules_dir: Path | None
    module_source: str | None
    connection: str
    ca_dir: Path | None


def _render(mesh: Mesh, out: Path, options: TargetOptions) -> tuple[dict[str, str], list[str]]:
    """Files to write into `out`, and warnings for the person at the terminal."""
    _check_roots(options)
    if options.target == "envoy":
        from meshgen.render.envoy import Layout, render_envoy
        from meshgen.render.envoy.layout import DEFAULT_TLS_ROOT

        root = PurePosixPath(options.config_root or out.resolve().as_posix())
        return render_envoy(mesh, Layout(root, PurePosixPath(options.tls_root or DEFAULT_TLS_ROOT))), []
    if options.target == "onprem":
        from meshgen.render.ansible import ONPREM_CONFIG_ROOT, OnpremOptions, render_onprem
        from meshgen.render.envoy.layout import DEFAULT_TLS_ROOT

        onprem = OnpremOptions(
            connection=options.connection,
            config_root=options.config_root or ONPREM_CONFIG_ROOT,
            tls_root=options.tls_root or str(DEFAULT_TLS_ROOT),
            ca_dir=_onprem_ca_dir(mesh, out, options).as_posix(),
        )
        return render_onprem(mesh, onprem), []
    from meshgen.render.terraform import AwsOptions, render_aws

    aws = AwsOptions(
        flavor=options.flavor,
        tracing=options.tracing,
        namespace=options.namespace,
        default_image=options.default_image,
        modules_dir=options.modules_dir,
        module_source=options.module_source,
    )
    rendered = render_aws(mesh, out, aws)
    return rendered.files, rendered.warnings


# Below this many sidecars a second process costs more than it saves.
_PARALLEL_FROM = 200


def _processes(sidecars: int) -> int:
    """How many processes render and write the envoy target: $MESHGEN_PROCESSES (1 or 2; 1 for a
    profiler, or a machine where other work needs the other core), else 2 from _PARALLEL_FROM
    sidecars on where there are two cores."""
    explicit = os.environ.get("MESHGEN_PROCESSES", "")
    if explicit.strip() in ("1", "2"):
        return int(explicit) if hasattr(os, "fork") else 1
    if sidecars < _PARALLEL_FROM or not hasattr(os, "fork"):
        return 1
    return max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _unaffected(
    out: Path, settings: str, shape: Shape, mesh: Mesh
) -> tuple[set[str] | None, dict[str, list[Any]] | None]:
    """For an incremental run of the envoy target: the Envoys to render, and the files of the
    others, which the change cannot affect, with their statuses; (None, None) to render all."""
    from meshgen.render.envoy.incremental import Shape, sidecars_to_render
    from meshgen.render.output import kept_files, load_record

    record = load_record(out)
    previous = Shape.from_json(record.get("envoy")) if record and record.get("settings") == settings else None
    if record is None or previous is None:
        return None, None
    only = sidecars_to_render(previous, shape, mesh)
    if only is None:
        return None, None
    kept = kept_files(out, record, {p.id for p in mesh.proxies} - only)
    return (only, kept) if kept is not None else (None, None)


def _envoy_shares(
    mesh: Mesh, out: Path, options: TargetOptions, only: set[str] | None = None
) -> Callable[[int, int], Iterator[dict[str, str]]]:
    """The envoy target's files, share by share, as _render would give them all at once; with
    `only`, those of these Envoys alone."""
    from meshgen.render.envoy import Layout
    from meshgen.render.envoy.layout import DEFAULT_TLS_ROOT
    from meshgen.render.envoy.sidecar import render_envoy_sidecars

    _check_roots(options)
    root = PurePosixPath(options.config_root or out.resolve().as_posix())
    layout = Layout(root, PurePosixPath(options.tls_root or DEFAULT_TLS_ROOT))
    return lambda share, of: render_envoy_sidecars(mesh, layout, share, of, only)


def _check_roots(options: TargetOptions) -> None:
    for flag, value in (("--config-root", options.config_root), ("--tls-root", options.tls_root)):
        if value and not PurePosixPath(value).is_absolute():
            raise InputError(f"{flag} must be an absolute path, got {value!r}")


def _inputs(catalog: Path, out: Path, options: TargetOptions) -> tuple[str, str] | None:
    """The fingerprints of what `generate` renders from (all of it; all but the catalog), for
    targets whose output depends on nothing else; None for onprem (its run also creates or
    checks a CA outside OUT, and brings its trust bundle up to date as CA generations retire)."""
    if options.target == "onprem":
        return None
    from meshgen.render.fingerprint import fingerprint, settings_fingerprint

    settings = [f"{f.name}={getattr(options, f.name)!r}" for f in dataclasses.fields(options)]
    settings.append(f"out={out.resolve()}")
    if options.target == "aws":
        from importlib.metadata import version

        # render.terraform.root.default_modules_dir, without importing the renderer
        modules = (options.modules_dir or Path(__file__).resolve().parents[1] / "terraform" / "modules").resolve()
        settings.append(f"modules={modules}:{(modules / 'ecs-mesh' / 'main.tf').exists()}")
        settings.append(f"jinja2={version('jinja2')}")
    everything = fingerprint(catalog, settings)
    return None if everything is None else (everything, settings_fingerprint(settings))


def _onprem_ca_dir(mesh: Mesh, out: Path, options: TargetOptions) -> Path:
    """meshgen's CA directory for an on-prem mesh, absolute. The CA signs every sidecar
    certificate, so neither it nor the catalog's own CA may live in OUT, which is meant to be
    shared (and whose unknown files `generate` may remove)."""
    from meshgen.pki.authority import default_ca_dir

    ca_dir = (options.ca_dir or default_ca_dir(mesh.name)).absolute()
    security = mesh.security
    key = Path(security.ca_key) if security.ca_key else ca_dir
    if security.enabled and key.resolve().is_relative_to(out.resolve()):
        what = "mesh.security.ca.key" if security.ca_key else "--ca-dir"
        raise InputError(f"{what}: {key} is inside the output directory {out}: keep the CA out of it")
    return ca_dir


def _ensure_onprem_authority(mesh: Mesh, ca_dir: Path) -> str | None:
    """The CA the inventory points at, ready to sign: the catalog's own (checked), or meshgen's
    in `ca_dir`, created when missing; its trust.pem brought up to date. A note when created."""
    from meshgen.pki.authority import has_own_authority, load_authority

    security = mesh.security
    if not security.enabled:
        return None
    created = not security.ca_cert and not has_own_authority(ca_dir)
    load_authority(security, ca_dir)
    if created:
        return f"created meshgen's CA for mesh {mesh.name} in {ca_dir} (it signs every sidecar certificate: keep it)"
    return None


_TARGET_OPTIONS = [
    click.option(
        "--target",
        type=click.Choice(["envoy", "onprem", "aws"]),
        default="envoy",
        show_default=True,
        help="envoy: one sidecar directory per instance; onprem: Ansible inventory and data for ansible/site.yml; "
        "aws: a Terraform root configuration.",
    ),
    click.option(
        "--config-root",
        help="envoy, onprem: absolute directory the sidecar directories live in where Envoy runs "
        "(default: OUT for envoy, /etc/envoy for onprem).",
    ),
    click.option(
        "--tls-root",
        help="envoy, onprem: absolute directory that holds each sidecar's certificate and key and the trust "
        "bundle where Envoy runs (default: /etc/meshgen/tls).",
    ),
    click.option(
        "--ca-dir",
        type=click.Path(path_type=Path),
        help="onprem, aws apply: meshgen's CA of this mesh on this machine, created when missing, outside OUT "
        "(default: $MESHGEN_CA_DIR or ~/.local/share/meshgen/ca/MESH); unused when the catalog names its own CA.",
    ),
    click.option(
        "--connection",
        type=click.Choice(["ssh", "docker"]),
        default="ssh",
        show_default=True,
        help="onprem: reach hosts over SSH at their address, or as Docker containers named like the hosts.",
    ),
    click.option(
        "--flavor",
        type=click.Choice(["ecs-envoy", "service-connect", "app-mesh"]),
        default="ecs-envoy",
        show_default=True,
        help="aws: ECS with Envoy sidecars, ECS Service Connect, or the legacy App Mesh.",
    ),
    click.option(
        "--tracing",
        type=click.Choice(["xray", "otel", "none"]),
        default="xray",
        show_default=True,
        help="aws: the tracing sidecar of each task.",
    ),
    click.option("--namespace", help="aws: Cloud Map namespace (default: MESH.local)."),
    click.option("--default-image", help="aws: container image of versions whose catalog entry names none."),
    click.option(
        "--modules-dir",
        type=click.Path(path_type=Path),
        help="aws: the terraform/modules directory (default: the modules shipped with meshgen).",
    ),
    click.option(
        "--module-source",
        metavar="SOURCE",
        help="aws: a versioned source for the root's modules instead of a local path, {module} standing for "
        "the module's name, e.g. git::https://github.com/ORG/meshgen.git//terraform/modules/{module}?ref=v0.1.0 "
        "or a registry address.",
    ),
]


def target_options(command: F) -> F:
    """Adds the options that choose and shape a target, passed on as `options: TargetOptions`."""

    @wraps(command)
    def run(**kwargs: Any) -> Any:
        names = [f.name for f in dataclasses.fields(TargetOptions)]
        options = TargetOptions(**{name: kwargs.pop(name) for name in names})
        return command(options=options, **kwargs)

    for option in reversed(_TARGET_OPTIONS):
        run = option(run)
    return run  # type: ignore[return-value]


out_option = click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Output directory.")


@main.command()
@catalog_argument
@out_option
@target_options
@click.option("--envoy", "check_envoy", is_flag=True, help="Have the real Envoy validate every config before writing.")
@user_errors
def generate(catalog: Path, out: Path, options: TargetOptions, check_envoy: bool) -> None:
    """Render the catalog into OUT: Envoy sidecar directories, an Ansible inventory for on-prem hosts
    (creating meshgen's CA for them when missing, outside OUT), or a Terraform root for AWS."""
    from meshgen.render.output import file_statuses, record_run, unchanged_since, write_streamed, write_tree

    fingerprints = None if check_envoy else _inputs(catalog, out, options)
    inputs = fingerprints[0] if fingerprints else None
    if inputs is not None:
        unchanged = unchanged_since(out, inputs)
        if unchanged is not None:  # the same inputs as the last run, its files untouched since
            count, told = unchanged
            for warning in told:
                click.echo(f"warning: {warning}", err=True)
            click.echo(f"{out}: unchanged; 0 files added, 0 changed, 0 removed, {count} unchanged")
            return
    mesh = load_catalog(catalog)
    if check_envoy:
        from meshgen.render.envoy.check import check_with_envoy

        check_with_envoy(mesh)
    extra = None
    if options.target == "envoy":
        from meshgen.render.envoy.incremental import Shape

        shape = Shape.of(mesh)
        only, kept = _unaffected(out, fingerprints[1], shape, mesh) if fingerprints else (None, None)
        # Sidecar by sidecar, rendered and written by as many processes as there are cores (up
        # to 2 where it pays): never the whole mesh's files in memory at once.
        with without_cycle_collection():
            streamed = write_streamed(
                out,
                _envoy_shares(mesh, out, options, only),
                processes=_processes(len(mesh.proxies) if only is None else len(only)),
                statuses=bool(inputs),
                kept=kept,
            )
        changes, statuses = streamed.changes, streamed.statuses
        warnings: list[str] = []
        if fingerprints:
            extra = {"settings": fingerprints[1], "envoy": shape.as_json()}
    else:
        with without_cycle_collection():
            files, warnings = _render(mesh, out, options)
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        if options.target == "onprem":
            note = _ensure_onprem_authority(mesh, _onprem_ca_dir(mesh, out, options))
            if note:
                click.echo(note)
        changes = write_tree(out, files)
        statuses = file_statuses(out, files) if inputs else None
    if inputs is not None and statuses is not None:
        record_run(out, statuses, inputs, [*mesh.deprecations, *warnings], extra)
    what = {
        "envoy": f"{len(mesh.instances)} sidecars" + _gateway_envoys(mesh),
        "onprem": f"Ansible inventory, {len(mesh.instances)} sidecars" + _gateway_envoys(mesh),
        "aws": f"Terraform root, {options.flavor}",
    }[options.target]
    click.echo(
        f"{out}: {what}; {len(changes.added)} files added, "
        f"{len(changes.changed)} changed, {len(changes.removed)} removed, {len(changes.unchanged)} unchanged"
    )


@main.command()
@catalog_argument
@out_option
@target_options
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are changes.")
@json_option
@user_errors
def diff(catalog: Path, out: Path, options: TargetOptions, exit_code: bool, as_json: bool) -> None:
    """Show what `generate` would change in OUT, per sidecar (or file), like a plan."""
    from meshgen.render.output import compare

    mesh = load_catalog(catalog)
    files, _ = _render(mesh, out, options)
    changes = compare(out, files)
    if as_json:
        emit_json(_diff_json(out, files, changes))
        if exit_code and not changes.empty:
            sys.exit(1)
        return
    by_sidecar: dict[str, list[str]] = {}
    for symbol, paths in (("+", changes.added), ("~", changes.changed), ("-", changes.removed)):
        for path in paths:
            sidecar, _, name = path.partition("/")
            by_sidecar.setdefault(sidecar, []).append(f"{symbol} {name}")
    for sidecar in sorted(by_sidecar):
        entries = by_sidecar[sidecar]
        kind = (
            "+" if all(e.startswith("+") for e in entries) else "-" if all(e.startswith("-") for e in entries) else "~"
        )
        click.echo(f"{kind} {sidecar}")
        for entry in sorted(entries, key=lambda e: e[2:]):
            click.echo(f"    {entry}")
            symbol, name = entry.split(" ", 1)
            if symbol == "~":
                relative = f"{sidecar}/{name}"
                before = (out / relative).read_text(encoding="utf-8").splitlines(keepends=True)
                after = files[relative].splitlines(keepends=True)
                for line in difflib.unified_diff(before, after, f"a/{relative}", f"b/{relative}", n=2):
                    click.echo(f"      {line}", nl=not line.endswith("\n"))
    added = len(
        {p.partition("/")[0] for p in changes.added}
        - {p.partition("/")[0] for p in changes.unchanged + changes.changed}
    )
    click.echo(
        f"Plan: {len(changes.added)} files to add, {len(changes.changed)} to change, "
        f"{len(changes.removed)} to remove ({added} new sidecars)."
        if not changes.empty
        else "No changes: OUT matches the catalog."
    )
    if exit_code and not changes.empty:
        sys.exit(1)


def _diff_json(out: Path, files: dict[str, str], changes: Changes) -> dict[str, Any]:
    entries = []
    for change, paths in (("add", changes.added), ("change", changes.changed), ("remove", changes.removed)):
        for path in paths:
            text = None
            if change == "change":
                before = (out / path).read_text(encoding="utf-8").splitlines(keepends=True)
                text = "".join(
                    difflib.unified_diff(before, files[path].splitlines(keepends=True), f"a/{path}", f"b/{path}")
                )
            entries.append({"path": path, "change": change, "diff": text})
    return {
        "changes": sorted(entries, key=lambda e: str(e["path"])),
        "summary": {"add": len(changes.added), "change": len(changes.changed), "remove": len(changes.removed)},
    }


@main.command()
@catalog_argument
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--max-amplification",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Most requests one edge call may cause at any service, retries multiplied along the chain.",
)
@click.option(
    "--min-timeout-margin",
    "margin",
    default="0ms",
    show_default=True,
    help="How much longer a caller must wait than its callee waits on its own dependencies.",
)
@click.option(
    "--ignore",
    "ignores",
    multiple=True,
    metavar="CHECK[=SUBJECT]",
    help="Ignore this finding for this run (repeatable); to keep ignoring it, say why in mesh.lint.ignore.",
)
@user_errors
def lint(catalog: Path, as_json: bool, max_amplification: int, margin: str, ignores: tuple[str, ...]) -> None:
    """Find retry storms, timeout budget errors, cycles, dead routes and weakened security;
    errors exit 1, warnings and ignored findings do not."""
    from meshgen.analysis.findings import Thresholds
    from meshgen.analysis.lint import apply_ignores, failing, to_json, to_table
    from meshgen.analysis.lint import lint as run_lint
    from meshgen.durations import Duration
    from meshgen.model.mesh import LintIgnore

    try:
        margin_ms = Duration.parse(margin).ms
    except ValueError as exc:
        raise InputError(f"--min-timeout-margin: {exc}") from None
    thresholds = Thresholds(max_amplification=max_amplification, min_timeout_margin_ms=margin_ms)
    mesh = load_catalog(catalog)
    given = tuple(
        LintIgnore(check=check, subject=subject or None, reason="--ignore on the command line")
        for check, _, subject in (value.partition("=") for value in ignores)
    )
    findings, ignored, stale = apply_ignores(run_lint(mesh, thresholds), (*mesh.lint_ignores, *given))
    output = (
        json.dumps(to_json(findings, thresholds, ignored, stale), indent=2)
        if as_json
        else to_table(findings, ignored, stale)
    )
    click.echo(output)
    if failing(findings):
        sys.exit(1)


@main.command()
@catalog_argument
@click.option("--format", "output_format", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@user_errors
def graph(catalog: Path, output_format: str) -> None:
    """Draw the service graph with routes and weights."""
    from meshgen.analysis.graph import to_dot, to_mermaid

    mesh = load_catalog(catalog)
    click.echo(to_mermaid(mesh) if output_format == "mermaid" else to_dot(mesh), nl=False)


_state_dir = resolve_state_dir


def _parse_externals(values: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    result = {}
    for value in values:
        name, sep, target = value.partition("=")
        address, colon, port = target.rpartition(":")
        if not sep or not colon or not port.isdigit():
            raise InputError(f"--external expects NAME=ADDRESS:PORT, got {value!r}")
        result[name] = (address.strip("[]"), int(port))
    return result


@main.command()
@catalog_argument
@state_dir_option
@click.option(
    "--external",
    "externals",
    multiple=True,
    metavar="NAME=ADDRESS:PORT",
    help="Serve an external dependency from a stand-in on loopback (repeatable).",
)
@json_option
@user_errors
def up(catalog: Path, state_dir: Path | None, externals: tuple[str, ...], as_json: bool) -> None:
    """Run the mesh on this machine: every app with a real Envoy sidecar, a trace collector, Prometheus.

    Run again on a changed catalog to apply the change live: sidecar files are swapped and the
    running Envoys reload them; only processes whose start-up inputs changed restart.
    Progress goes to stderr. Ctrl-C while starting a mesh stops everything it started.
    """
    from meshgen.deploy.local.report import describe_up, up_json
    from meshgen.deploy.local.runner import up as run_up

    directory = _state_dir(state_dir)
    report = run_up(catalog, directory, _parse_externals(externals), progress=progress)
    if as_json:
        emit_json(up_json(report, directory))
    else:
        click.echo(describe_up(report, directory))


@main.command()
@state_dir_option
@user_errors
def down(state_dir: Path | None) -> None:
    """Stop every process of the running local mesh."""
    from meshgen.deploy.local.runner import down as run_down

    stopped = run_down(_state_dir(state_dir))
    click.echo(f"stopped {len(stopped)} processes" if stopped else "no mesh is running")


@main.command()
@state_dir_option
@json_option
@user_errors
def status(state_dir: Path | None, as_json: bool) -> None:
    """Show what the running local mesh runs where; exit 1 if a process is down."""
    from meshgen.deploy.local.report import describe_status, status_json
    from meshgen.deploy.local.runner import status as run_status

    state, processes = run_status(_state_dir(state_dir))
    if as_json:
        document = status_json(state, processes)
        emit_json(document)
        if not document["healthy"]:
            sys.exit(1)
        return
    if state is None:
        click.echo("no mesh is running")
        sys.exit(1)
    click.echo(describe_status(state, processes))
    if not all(p.healthy for p in processes):
        sys.exit(1)


@main.command()
@catalog_argument
@click.option("--json", "as_json", is_flag=True, help='Print {"checks": [...]} instead of a table.')
@click.option(
    "--only",
    "kinds",
    multiple=True,
    type=click.Choice(
        ["config", "security", "routing", "retries", "timeout", "fault", "mirror", "tracing", "outlier", "ratelimit"]
    ),
    help="Run only these kinds of check (repeatable).",
)
@click.option(
    "--ca-dir",
    type=click.Path(path_type=Path),
    help="meshgen's CA of this mesh, to mint test identities (default: the running local mesh's, "
    "else $MESHGEN_CA_DIR or ~/.local/share/meshgen/ca/MESH).",
)
@state_dir_option
@user_errors
def verify(catalog: Path, as_json: bool, kinds: tuple[str, ...], ca_dir: Path | None, state_dir: Path | None) -> None:
    """Prove the live mesh authorizes, routes, retries, times out, ejects, traces and limits as CATALOG says.

    Checks are derived from CATALOG, so a catalog the running mesh does not implement fails.
    Exit 1 when any check fails. Against the running local mesh, the result is also kept in its
    state dir (verify.json) for `meshgen dashboard`.
    """
    from meshgen.deploy.local.state import load_state
    from meshgen.verify import run_checks
    from meshgen.verify.authority import find_authority
    from meshgen.verify.checks import KINDS
    from meshgen.verify.report import to_json, to_table
    from meshgen.verify.saved import save_result

    mesh = load_catalog(catalog)
    directory = _state_dir(state_dir)
    authority = find_authority(mesh, ca_dir, directory) if mesh.security.enabled else None
    results, skipped = run_checks(mesh, kinds or KINDS, authority=authority, progress=progress)
    running = load_state(directory)
    if running is not None and running.mesh == mesh.name:  # for `meshgen dashboard`
        save_result(directory, catalog, kinds or KINDS, to_json(results, skipped))
    click.echo(json.dumps(to_json(results, skipped), indent=2) if as_json else to_table(results, skipped))
    if not results or not all(r.passed for r in results):
        sys.exit(1)


@main.command()
@click.option(
    "--catalog",
    "catalog",
    type=click.Path(path_type=Path),
    help="Catalog naming the collector (default: the running local mesh's).",
)
@click.option("--limit", default=5, show_default=True, help="How many recent traces.")
@click.option("--service", help="Only traces through this service.")
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help='Print {"traces": [[span, ...], ...]} (Zipkin v2 spans).')
@user_errors
def traces(catalog: Path | None, limit: int, service: str | None, state_dir: Path | None, as_json: bool) -> None:
    """Show recent traces from the mesh's collector as waterfalls."""
    from meshgen.analysis.waterfall import draw
    from meshgen.deploy.local.state import load_state
    from meshgen.verify.http import send

    if catalog is None:
        state = load_state(_state_dir(state_dir))
        if state is None:
            raise UserError("no local mesh is running; name the catalog with --catalog")
        catalog = Path(state.catalog)
    mesh = load_catalog(catalog)
    if mesh.tracing is None:
        problem = mesh.sources.problem(("mesh",), "no `tracing` configured, so there is no collector to ask")
        raise CatalogError([problem], heading="no traces to show")
    query = f"/api/v2/traces?limit={limit}" + (f"&serviceName={service}" if service else "")
    reply = send(mesh.tracing.collector_address, mesh.tracing.collector_port, query)
    if reply.status != 200 or not isinstance(reply.body, list):
        raise UserError(f"collector at {mesh.tracing.collector_address}:{mesh.tracing.collector_port}: {reply.body}")
    if as_json:
        emit_json({"traces": reply.body})
        return
    click.echo("\n\n".join(draw(spans) for spans in reply.body) or "no traces yet")


@main.command()
@click.option(
    "--catalog",
    "catalog",
    type=click.Path(path_type=Path),
    help="Catalog of the mesh (default: the running local mesh's).",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "prometheus", "sidecars"]),
    default="auto",
    show_default=True,
    help="auto: the mesh's Prometheus when it answers, else every sidecar's stats listener.",
)
@click.option("--window", help="Rates over this long (default: 10s from Prometheus, 1s from the sidecars).")
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C (not with --json).")
@state_dir_option
@json_option
@user_errors
def top(
    *, catalog: Path | None, source: str, window: str | None, watch: bool, state_dir: Path | None, as_json: bool
) -> None:
    """Requests/s, error % and p50/p99 per service (its own sidecars' inbound) and per edge (the
    caller's sidecars, towards every version of the callee)."""
    import time

    from meshgen.deploy.local.state import load_state
    from meshgen.durations import Duration
    from meshgen.metrics.top import choose, collect, to_table

    if watch and as_json:
        raise InputError("--watch refreshes a table; --json prints one document: choose one")
    seconds = None
    if window is not None:
        try:
            seconds = Duration.parse(window).seconds
        except ValueError as exc:
            raise InputError(f"--window: {exc}") from None
        if seconds <= 0:
            raise InputError("--window must be longer than 0s")
    if catalog is None:
        state = load_state(_state_dir(state_dir))
        if state is None:
            raise UserError("no local mesh is running; name the catalog with --catalog")
        catalog = Path(state.catalog)
    mesh = load_catalog(catalog)
    reader = choose(mesh, source)
    if as_json:
        emit_json(collect(mesh, reader, seconds))
        return
    while True:
        text = to_table(collect(mesh, reader, seconds))
        if not watch:
            click.echo(text)
            return
        click.echo(("\x1b[H\x1b[2J" if sys.stdout.isatty() else "\n") + text)
        time.sleep(1.0)


@main.command()
@catalog_argument
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), help="Write the dashboard to this file (default: stdout)."
)
@user_errors
def grafana(catalog: Path, out: Path | None) -> None:
    """Print a Grafana dashboard of the mesh (JSON): requests/s, error % and p50/p99 per service and
    per edge, from the Prometheus that scrapes the sidecars (a dashboard variable)."""
    from meshgen.metrics.grafana import dashboard
    from meshgen.render.output import atomic_write

    text = json.dumps(dashboard(load_catalog(catalog)), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    atomic_write(out, text)
    click.echo(f"{out}: Grafana dashboard of mesh {load_catalog(catalog).name}", err=True)


@main.command()
@state_dir_option
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Loopback address to listen on; any other is refused (the page is for this machine only).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=9900, show_default=True, help="0: any free port.")
@user_errors
def dashboard(state_dir: Path | None, address: str, port: int) -> None:
    """Serve a live web page of the running local mesh until Ctrl-C: the service graph with request
    rate, error rate and p99 on every edge, each service's routes, policies and instances, recent
    traces as waterfalls, and the last `meshgen verify` result. Prints its URL."""
    from meshgen.dashboard.server import serve

    serve(_state_dir(state_dir), address, port, announce=lambda url: click.echo(f"dashboard: {url}  (Ctrl-C stops it)"))


@main.group()
def aws() -> None:
    """Drive Terraform on the generated AWS root, and compare what is deployed with the catalog."""


def _terraform(out: Path, timeout: str) -> Any:
    """The Terraform CLI on OUT, streaming its output to stderr, each command stopped after `timeout`."""
    from meshgen.deploy.aws.terraform import Terraform
    from meshgen.durations import Duration

    try:
        seconds = Duration.parse(timeout).seconds
    except ValueError as exc:
        raise InputError(f"--timeout: {exc}") from None
    return Terraform(out, progress=progress, timeout=seconds or None)


def _terraform_root(catalog: Path, out: Path, options: TargetOptions, timeout: str) -> Any:
    """Generate the root into OUT (as `generate --target aws` does), then `terraform init` it."""
    from meshgen.render.output import write_tree

    files, warnings = _render(load_catalog(catalog), out, dataclasses.replace(options, target="aws"))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    write_tree(out, files)
    terraform = _terraform(out, timeout)
    terraform.init()
    return terraform


timeout_option = click.option(
    "--timeout",
    default="1h",
    show_default=True,
    help="Stop a Terraform command still running after this long (as Ctrl-C does: cleanly, then killed); "
    "0 for no limit.",
)


@aws.command("plan")
@catalog_argument
@out_option
@target_options
@timeout_option
@json_option
@user_errors
def aws_plan(catalog: Path, out: Path, options: TargetOptions, timeout: str, as_json: bool) -> None:
    """Generate the root into OUT and show what `terraform apply` would change.

    Terraform's own output streams to stderr as it runs.
    """
    summary = _terraform_root(catalog, out, options, timeout).plan()
    if as_json:
        emit_json(summary.to_json())
        return
    click.echo("\n".join([*(f"  {r}" for r in summary.resources), summary.describe()]))


# Where an ecs-envoy root keeps its identity secrets: they must hold certificates before tasks start.
IDENTITY_SECRETS = "module.mesh.aws_secretsmanager_secret.identity"


@aws.command("apply")
@catalog_argument
@out_option
@target_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@timeout_option
@user_errors
def aws_apply(catalog: Path, out: Path, options: TargetOptions, auto_approve: bool, timeout: str) -> None:
    """Generate the root into OUT, plan, and apply exactly that plan.

    Terraform's own output streams to stderr as it runs. ecs-envoy with mutual TLS: new identity
    secrets are created first and given their certificates (as `meshgen aws certs push` does)
    before any task that reads them starts.
    """
    terraform = _terraform_root(catalog, out, options, timeout)
    mesh = load_catalog(catalog)
    identities = options.flavor == "ecs-envoy" and mesh.security.enabled
    ca_dir = options.ca_dir
    summary = terraform.plan()
    click.echo("\n".join([*(f"  {r}" for r in summary.resources), summary.describe()]))
    if summary.resources:
        if not auto_approve and not click.confirm("Apply this plan?"):
            raise UserError("not applied")
        if identities and any(r.startswith("create ") and IDENTITY_SECRETS in r for r in summary.resources):
            terraform.apply_targets(IDENTITY_SECRETS)
            _push_identities(mesh, terraform, ca_dir)
            terraform.plan()  # the same changes, less the secrets now in place
        terraform.apply_plan()
    if identities:
        _push_identities(mesh, terraform, ca_dir)  # secrets an earlier plain `terraform apply` left empty
    if summary.resources:
        click.echo("applied")


def _push_identities(mesh: Mesh, terraform: Any, ca_dir: Path | None) -> None:
    """Certificates into the root's identity secrets that hold none, in the region they are in."""
    import boto3

    from meshgen.cli_aws_certs import authority_for, push_identities
    from meshgen.deploy.aws.identities import Identities

    arns = {
        service: values["arn"] for service, values in terraform.resources(*IDENTITY_SECRETS.split(".")[-2:]).items()
    }
    if not arns:
        return
    region = next(iter(arns.values())).split(":")[3]
    identities = Identities(mesh, boto3.session.Session(region_name=region), secret_ids=arns)
    push_identities(identities, authority_for(mesh, ca_dir))


@aws.command("destroy")
@out_option
@click.option("--auto-approve", is_flag=True, help="Destroy without asking.")
@timeout_option
@user_errors
def aws_destroy(out: Path, auto_approve: bool, timeout: str) -> None:
    """Destroy everything the root in OUT manages.

    Terraform's own output streams to stderr as it runs.
    """
    terraform = _terraform(out, timeout)
    terraform.init()
    summary = terraform.plan(destroy=True)
    click.echo(summary.describe())
    if not summary.resources:
        return
    if not auto_approve and not click.confirm("Destroy all of it?"):
        raise UserError("not destroyed")
    terraform.apply_plan()
    click.echo("destroyed")


@aws.command("drift")
@catalog_argument
@click.option(
    "--flavor", type=click.Choice(["ecs-envoy", "service-connect", "app-mesh"]), default="ecs-envoy", show_default=True
)
@click.option("--tracing", type=click.Choice(["xray", "otel", "none"]), default="xray", show_default=True)
@click.option("--namespace", help="Cloud Map namespace (default: MESH.local).")
@click.option("--region", help="AWS region (default: from the environment).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@user_errors
def aws_drift(
    *, catalog: Path, flavor: str, tracing: str, namespace: str | None, region: str | None, as_json: bool
) -> None:
    """Read what is deployed (ECS, Cloud Map, App Mesh) and report every difference from CATALOG."""
    import boto3
    import botocore.exceptions

    from meshgen.deploy.aws.drift import app_mesh_drift, ecs_drift

    mesh = load_catalog(catalog)
    session = boto3.session.Session(region_name=region)
    namespace = namespace or f"{mesh.name}.local"
    try:
        if flavor == "app-mesh":
            drifts = app_mesh_drift(mesh, namespace, session)
        else:
            drifts = ecs_drift(mesh, flavor, namespace, session, tracing)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise UserError(f"reading AWS failed: {exc}") from None
    if as_json:
        click.echo(json.dumps({"drift": [dataclasses.asdict(d) for d in drifts]}, indent=2))
    else:
        click.echo("\n".join(str(d) for d in drifts) if drifts else f"no drift: AWS matches {catalog}")
    if drifts:
        sys.exit(1)


aws.add_command(aws_certs)
main.add_command(certs)


def _gateway_count(mesh: Mesh) -> int:
    return sum(len(g.instances) for g in mesh.gateways)


def _gateway_envoys(mesh: Mesh) -> str:
    """ ", 2 gateway Envoys" to follow the sidecars in a summary; nothing without gateways."""
    count = _gateway_count(mesh)
    return f", {count} gateway Envoy{'' if count == 1 else 's'}" if count else ""
