"""Where a sidecar's files live when its Envoy runs: config files, its identity, the trust bundle.

Rendered configs name these paths (the bootstrap names the files Envoy watches, the SDS files name
the certificate files), so the renderer needs them; who puts files there is the deploy target's
business (meshgen up, the Ansible roles, an ECS task's entrypoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath

# Where hosts keep sidecar identities unless told otherwise: outside the config directory, so
# that configs can be shown, diffed and copied around without ever carrying key material.
DEFAULT_TLS_ROOT = PurePosixPath("/etc/meshgen/tls")
TRUST_DIR = "trust"
# Each identity and the trust bundle are directories of generations with a `current` symlink:
# swapping the symlink is one atomic rename, so Envoy never reads a certificate with the key of
# another generation (it watches the parent directory and reloads both files on the rename).
CURRENT = "current"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
CA_FILE = "ca.pem"


@dataclass(frozen=True)
class SidecarPaths:
    config_dir: PurePosixPath  # envoy.yaml and the files it watches
    identity_dir: PurePosixPath  # <generation>/cert.pem and key.pem, `current` -> the live one
    trust_dir: PurePosixPath  # <generation>/ca.pem, `current` -> the live bundle
    # Every path is named many times per sidecar (each cluster names the SDS files): made once.
    _files: dict[str, PurePosixPath] = field(default_factory=dict, init=False, repr=False, compare=False)

    def file(self, name: str) -> PurePosixPath:
        path = self._files.get(name)
        if path is None:
            path = self._files[name] = self.config_dir / name
        return path

    @cached_property
    def cert(self) -> PurePosixPath:
        return self.identity_dir / CURRENT / CERT_FILE

    @cached_property
    def key(self) -> PurePosixPath:
        return self.identity_dir / CURRENT / KEY_FILE

    @cached_property
    def trust_bundle(self) -> PurePosixPath:
        return self.trust_dir / CURRENT / CA_FILE


@dataclass(frozen=True)
class Layout:
    """The roots every sidecar's paths derive from; absolute, since configs name them."""

    config_root: PurePosixPath
    tls_root: PurePosixPath = DEFAULT_TLS_ROOT

    def sidecar(self, instance_id: str) -> SidecarPaths:
        return SidecarPaths(
            config_dir=self.config_root / instance_id,
            identity_dir=self.tls_root / instance_id,
            trust_dir=self.tls_root / TRUST_DIR,
        )
