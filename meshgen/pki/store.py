"""Sidecar identities and the trust bundle on disk, laid out as rendered configs expect them.

    <tls root>/<instance id>/<generation>/cert.pem, key.pem   current -> <generation>
    <tls root>/trust/<generation>/ca.pem                        current -> <generation>

A new generation is written whole, then `current` is replaced by one rename: Envoy, watching the
parent directory, reloads certificate and key together and never sees a half-written pair. Keys
are created 0600 and directories 0700, owned by whoever runs this (the user running the local
mesh); one previous generation is kept, older ones are removed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cryptography import x509

from meshgen.pki.certificates import CertInfo, PrivateKey, cert_pem, describe, key_pem, load_certs, now
from meshgen.render.envoy.layout import CA_FILE, CERT_FILE, CURRENT, KEY_FILE, TRUST_DIR

KEEP_GENERATIONS = 2


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create `path` with `mode` from the start: a key is never readable by others, not even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _new_generation(directory: Path, tag: str) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{now():%Y%m%dT%H%M%S%f}-{tag[:12]}"
    generation = directory / name
    generation.mkdir(mode=0o700)
    return generation


def _swap_current(directory: Path, generation: Path) -> None:
    temporary = directory / f".{CURRENT}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(generation.name)
    os.replace(temporary, directory / CURRENT)
    generations = sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())
    for stale in generations[:-KEEP_GENERATIONS]:
        shutil.rmtree(stale)


class TlsStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def install_identity(
        self, instance_id: str, cert: x509.Certificate, chain: list[x509.Certificate], key: PrivateKey
    ) -> None:
        directory = self.root / instance_id
        generation = _new_generation(directory, format(cert.serial_number, "x"))
        write_private(generation / KEY_FILE, key_pem(key))
        write_private(generation / CERT_FILE, b"".join(cert_pem(c) for c in [cert, *chain]), 0o644)
        _swap_current(directory, generation)

    def install_trust(self, bundle: list[x509.Certificate]) -> bool:
        """Make `bundle` the trusted CAs; False when it already is."""
        data = b"".join(cert_pem(c) for c in bundle)
        directory = self.root / TRUST_DIR
        current = directory / CURRENT / CA_FILE
        if current.exists() and current.read_bytes() == data:
            return False
        generation = _new_generation(directory, format(bundle[0].serial_number, "x"))
        write_private(generation / CA_FILE, data, 0o644)
        _swap_current(directory, generation)
        return True

    def identity(self, instance_id: str) -> CertInfo | None:
        path = self.root / instance_id / CURRENT / CERT_FILE
        if not path.exists():
            return None
        return describe(load_certs(path.read_bytes(), str(path))[0])

    def trust(self) -> list[CertInfo]:
        path = self.root / TRUST_DIR / CURRENT / CA_FILE
        return [describe(c) for c in load_certs(path.read_bytes(), str(path))] if path.exists() else []

    def instances(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name != TRUST_DIR)

    def remove(self, instance_id: str) -> None:
        shutil.rmtree(self.root / instance_id, ignore_errors=True)
