"""Same catalog, same bytes, whatever Python's hash seed: every target is rendered in two separate
processes with PYTHONHASHSEED 1 and 2 and compared file by file. Within one process the seed is
fixed, so a set or a dict built from one, iterated into output, only shows here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import EXAMPLES, REPO, TESTDATA

CATALOGS = [*EXAMPLES, TESTDATA / "catalogs/features.yaml", REPO / "molecule/default/catalog.yaml"]

# Run in a fresh interpreter: renders every target of every catalog and prints, per case, each
# file's SHA-256 (or the error the target gave; that must not vary either).
RENDER_ALL = """
import hashlib, json, sys
from pathlib import Path, PurePosixPath
from meshgen.analysis.findings import Thresholds
from meshgen.analysis.lint import lint, to_json
from meshgen.errors import UserError
from meshgen.model import load_mesh
from meshgen.render.ansible import OnpremOptions, render_onprem
from meshgen.render.envoy import Layout, render_envoy
from meshgen.render.terraform import AwsOptions, render_aws

def digest(files):
    return {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()}

out = Path("/nonexistent/meshgen-root")
result = {}
for catalog in sys.argv[1:]:
    mesh = load_mesh(Path(catalog))
    targets = {
        "envoy": lambda: render_envoy(mesh, Layout(PurePosixPath("/etc/envoy"), PurePosixPath("/etc/tls"))),
        "onprem": lambda: render_onprem(mesh, OnpremOptions()),
        "lint": lambda: {"lint.json": json.dumps(to_json(lint(mesh, Thresholds()), Thresholds()))},
    }
    for flavor in ("ecs-envoy", "service-connect", "app-mesh"):
        options = AwsOptions(flavor=flavor, default_image="demo:1")
        targets[f"aws-{flavor}"] = lambda options=options: render_aws(mesh, out, options).files
    for target, render in targets.items():
        try:
            result[f"{catalog} {target}"] = digest(render())
        except UserError as exc:
            result[f"{catalog} {target}"] = {"error": str(exc)}
print(json.dumps(result))
"""


def _render_with_seed(seed: str) -> dict[str, dict[str, str]]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", RENDER_ALL, *map(str, CATALOGS)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rendered: dict[str, dict[str, str]] = json.loads(done.stdout)
    return rendered


def test_every_target_renders_the_same_bytes_under_any_hash_seed() -> None:
    first, second = _render_with_seed("1"), _render_with_seed("2")
    assert first.keys() == second.keys()
    differing = [
        f"{case}: {name}"
        for case in first
        for name in sorted(first[case].keys() | second[case].keys())
        if first[case].get(name) != second[case].get(name)
    ]
    assert not differing, "output depends on the hash seed:\n" + "\n".join(differing)
    rendered = [case for case, files in first.items() if "error" not in files]
    assert len(rendered) >= 4 * len(CATALOGS), rendered  # the targets did render, not only fail alike
