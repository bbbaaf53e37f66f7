"""A root configuration per flavor: fixed .tf files that call the modules, plus the catalog's
data as terraform.tfvars.json (and, for ecs-envoy, each version's Envoy config)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from meshgen.errors import CatalogError, InputError
from meshgen.model.mesh import Mesh
from meshgen.render.terraform.ecs import check_leaf_lifetime, task_envoy_configs
from meshgen.render.terraform.fidelity import app_mesh_limitations, ecs_envoy_limitations, service_connect_limitations
from meshgen.render.terraform.flavors import (
    app_mesh_data,
    ecs_envoy_metrics,
    ecs_envoy_services,
    identities,
    mesh_ports,
    service_connect_services,
    service_connect_tls,
)

FLAVORS = ("ecs-envoy", "service-connect", "app-mesh")
TRACING_KINDS = ("xray", "otel", "none")
APP_MESH_NOTICE = (
    "App Mesh is LEGACY: AWS discontinued it on 2026-09-30. Use this flavor only for meshes that still "
    "run on it and for migrations; new ECS meshes: --flavor ecs-envoy (full fidelity) or service-connect."
)
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # HCL, not HTML
)


@dataclass(frozen=True)
class AwsOptions:
    flavor: str = "ecs-envoy"
    tracing: str = "xray"
    namespace: str | None = None  # default: <mesh>.local
    default_image: str | None = None
    modules_dir: Path | None = None
    # A versioned source for every module instead of a local path, with {module} for the module's
    # name: a git ref or a registry address (None: the modules shipped with meshgen, by path).
    module_source: str | None = None


@dataclass
class AwsRoot:
    files: dict[str, str]
    warnings: list[str] = field(default_factory=list)


MODULES = ("ecs-mesh", "ecs-envoy-service", "ecs-service-connect", "app-mesh")
# Characters a source would need to break out of its HCL string, or to be read as an interpolation.
_UNSAFE_SOURCE = re.compile(r'["\s\\]|\$\{|%\{')


def default_modules_dir() -> Path:
    """The Terraform modules shipped with meshgen: package data of the installed wheel, or in a
    checkout the link meshgen/terraform_modules -> terraform/modules."""
    return Path(__file__).resolve().parents[2] / "terraform_modules"


def _modules_source(out: Path, modules_dir: Path) -> str:
    if not (modules_dir / "ecs-mesh" / "main.tf").exists():
        raise InputError(
            f"Terraform modules not found in {modules_dir}: reinstall meshgen (its wheel ships them), "
            "name the modules directory with --modules-dir, or pass --module-source"
        )
    relative = os.path.relpath(modules_dir.resolve(), out.resolve())
    return relative if relative.startswith(".") else f"./{relative}"


def module_sources(out: Path, options: AwsOptions) -> dict[str, str]:
    """The `source` of each module a root calls: `--module-source` with {module} filled in, or a
    relative path from the root to the modules directory."""
    if options.module_source is None:
        local = _modules_source(out, options.modules_dir or default_modules_dir())
        return {name: f"{local}/{name}" for name in MODULES}
    template = options.module_source
    if options.modules_dir is not None:
        raise InputError("--module-source and --modules-dir exclude each other: pass one")
    if template.count("{module}") != 1:
        raise InputError(
            f"--module-source must hold {{module}} once, where the module's name goes, got {template!r} "
            "(e.g. git::https://github.com/ORG/meshgen.git//terraform/modules/{module}?ref=v0.1.0)"
        )
    if _UNSAFE_SOURCE.search(template):
        raise InputError(f"--module-source {template!r}: no quotes, backslashes, whitespace or ${{ or %{{ in a source")
    return {name: template.replace("{module}", name) for name in MODULES}


def _render(name: str, **context: Any) -> str:
    return _TEMPLATES.get_template(f"{name}.j2").render(**context)


def _check_images(mesh: Mesh, options: AwsOptions) -> None:
    if options.default_image:
        return
    problems = [
        mesh.sources.problem(
            ("services", service.name, "versions", version.name, "image"),
            "no container image; give the version an `image`, or pass --default-image",
        )
        for service in mesh.services
        for version in service.versions
        if not version.image
    ]
    if problems:
        raise CatalogError(problems, heading="the catalog cannot go to AWS")


def render_aws(mesh: Mesh, out: Path, options: AwsOptions) -> AwsRoot:
    if options.flavor not in FLAVORS:
        raise InputError(f"unknown flavor {options.flavor!r}; expected one of {', '.join(FLAVORS)}")
    namespace = options.namespace or f"{mesh.name}.local"
    context = {"mesh": mesh.name, "flavor": options.flavor, "sources": module_sources(out, options)}
    flavor = options.flavor
    files = {
        "versions.tf": _render("versions.tf", **context),
        "providers.tf": _render("providers.tf", **context),
        "main.tf": _render(f"{flavor}.main.tf", **context),
        "outputs.tf": _render(f"{flavor}.outputs.tf", **context),
    }
    variables = [_render("common.variables.tf", **context)]
    tfvars: dict[str, Any] = {"mesh_name": mesh.name}
    warnings: list[str] = []
    if flavor in ("ecs-envoy", "service-connect"):
        _check_images(mesh, options)
        files["network.tf"] = _render("network.tf", **context)
        variables.append(_render("ecs.variables.tf", **context))
        tfvars["namespace_name"] = namespace
        tfvars["default_app_image"] = options.default_image or ""
    if flavor == "ecs-envoy":
        check_leaf_lifetime(mesh)
        tfvars["tracing"] = {"kind": options.tracing}
        tfvars["services"] = ecs_envoy_services(mesh)
        tfvars["identities"] = identities(mesh)
        tfvars["mesh_ports"] = mesh_ports(tfvars["services"], flavor)
        tfvars["metrics"] = ecs_envoy_metrics(mesh)
        for name, config in task_envoy_configs(mesh, namespace, options.tracing).items():
            files[f"envoy/{name}.yaml"] = config
        warnings = ecs_envoy_limitations(mesh, options.tracing)
    elif flavor == "service-connect":
        tfvars["services"] = service_connect_services(mesh)
        tfvars["mesh_ports"] = mesh_ports(tfvars["services"], flavor)
        tfvars["tls"] = service_connect_tls(mesh)
        warnings = service_connect_limitations(mesh)
    else:
        tfvars.update(app_mesh_data(mesh, namespace))
        tfvars["egress_filter"] = "ALLOW_ALL" if mesh.externals else "DROP_ALL"
        tfvars["xray"] = options.tracing == "xray"
        warnings = [APP_MESH_NOTICE, *app_mesh_limitations(mesh, options.tracing)]
    variables.append(_render(f"{flavor}.variables.tf", **context))
    files["variables.tf"] = "\n".join(variables)
    files["terraform.tfvars.json"] = json.dumps(tfvars, indent=2, sort_keys=True) + "\n"
    if warnings:
        files["LIMITATIONS.md"] = _limitations(mesh.name, flavor, warnings)
    return AwsRoot(files=dict(sorted(files.items())), warnings=warnings)


def _limitations(mesh: str, flavor: str, warnings: list[str]) -> str:
    lines = [
        f"# What flavor {flavor} cannot honour of mesh {mesh}",
        "",
        "Generated by meshgen. Each line is a setting of the catalog this flavor does not carry, and the value lost.",
        "",
    ]
    return "\n".join([*lines, *(f"- {w}" for w in warnings)]) + "\n"
