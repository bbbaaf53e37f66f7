"""Where `meshgen generate` spends its time: cProfile on the CLI process, per target.

    .venv/bin/python -m bench.profile_generate [--services 1000] [--out DIR]

Writes the synthetic catalog of `bench.generation`, runs `python -m cProfile -o T.prof -m meshgen
generate CATALOG -o OUT --target T` for each target into a new directory, and prints the time of
each stage (inclusive, as a share of the profiled run): imports, YAML loading with positions,
pydantic validation, resolve, render, serialisation, writing. The command runs in one process
(MESHGEN_PROCESSES=1; by default generate renders and writes the envoy target in two from 200
sidecars on, and cProfile would only see the parent's half). cProfile roughly doubles the run
(it charges every Python call), so read shares, not seconds. The .prof files stay in DIR for
`python -m pstats` or snakeviz.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.generation import TARGETS, synthetic_catalog, write_catalog

# (label, a path fragment of the function's file, its name); times are inclusive (cumulative).
STAGES = (
    ("imports (all, lazy ones too)", "importlib._bootstrap", "_find_and_load"),
    ("load_mesh", "meshgen/model/load.py", "load_mesh"),
    ("  YAML with positions (load_raw)", "meshgen/catalog/source.py", "load_raw"),
    ("    of which node -> Python (to_python)", "meshgen/catalog/nodes.py", "to_python"),
    ("  pydantic validation", "pydantic/main.py", "model_validate"),
    ("  resolve", "meshgen/model/resolve.py", "resolve"),
    ("render (cli._render)", "meshgen/cli.py", "_render"),
    ("  render_envoy (sidecar documents)", "meshgen/render/envoy/sidecar.py", "render_envoy"),
    ("  aws: task_envoy_configs", "meshgen/render/terraform/ecs.py", "task_envoy_configs"),
    ("    of which _with_static_secret_refs", "meshgen/render/envoy/static.py", "_with_static_secret_refs"),
    ("  serialisation: to_config (orjson)", "meshgen/render/document.py", "to_config"),
    ("  serialisation: to_yaml (PyYAML)", "meshgen/render/document.py", "to_yaml"),
    ("  envoy: write_streamed (render and write, sidecar by sidecar)", "meshgen/render/output.py", "write_streamed"),
    ("    its render (render_envoy_sidecars)", "meshgen/render/envoy/sidecar.py", "render_envoy_sidecars"),
    ("    _update: compare and write, the render included", "meshgen/render/output.py", "_update"),
    ("write_tree", "meshgen/render/output.py", "write_tree"),
    ("  compare (exists, read)", "meshgen/render/output.py", "compare"),
    ("  atomic_write (per file)", "meshgen/render/output.py", "atomic_write"),
    ("    mkstemp", "tempfile.py", "mkstemp"),
    ("    mkdir (parents, per file)", "pathlib.py", "mkdir"),
    ("    os.replace", "~", "<built-in method posix.replace>"),
)


def stage_times(profile: Path) -> tuple[float, list[tuple[str, float, float]]]:
    """The profiled run's total seconds, and (label, seconds, share) per stage found in it."""
    stats = pstats.Stats(str(profile))
    total: float = stats.total_tt  # type: ignore[attr-defined]
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for label, fragment, name in STAGES:
        # The largest match: a name defined twice in one file (a wrapper and what it wraps) counts once.
        matches = [ct for (file, _, func), (_, _, _, ct, _) in table.items() if fragment in file and func == name]
        seconds = max(matches, default=0.0)
        if seconds:
            rows.append((label, seconds, seconds / total))
    own = [
        tt for (file, _, func), (_, _, tt, _, _) in table.items() if file.endswith("output.py") and func == "write_tree"
    ]
    if own:
        rows.append(("  write_tree's own lines (membership tests in lists)", own[0], own[0] / total))
    return total, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_generate")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="where the .prof files go (default: a temporary directory)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="meshgen-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    catalog = write_catalog(synthetic_catalog(args.services), out / "catalog.yaml")
    for target in TARGETS:
        tree = out / f"out-{target}"
        shutil.rmtree(tree, ignore_errors=True)
        profile = out / f"{target}.prof"
        argv_ = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "meshgen", "generate", str(catalog)]
        # One process, so cProfile sees all of the work (generate splits the envoy target's between
        # two from 200 sidecars on); a cache of its own, so no run stops early.
        env = {**os.environ, "MESHGEN_PROCESSES": "1", "MESHGEN_CACHE_DIR": str(out / "cache")}
        subprocess.run(
            [*argv_, "-o", str(tree), "--target", target], check=True, timeout=1800, capture_output=True, env=env
        )
        shutil.rmtree(tree, ignore_errors=True)
        total, rows = stage_times(profile)
        print(f"{target}: {total:.2f} s under cProfile ({args.services} services)")
        for label, seconds, share in rows:
            print(f"  {label:55} {seconds:7.2f} s {share:6.1%}")
    print(f"profiles in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
