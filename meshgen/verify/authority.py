"""Which CA verification mints its test identities from: the one the mesh's certificates come from."""

from __future__ import annotations

from pathlib import Path

from meshgen.deploy.local.certs import CA_DIR
from meshgen.deploy.local.state import load_state
from meshgen.model.mesh import Mesh
from meshgen.pki.authority import Authority, default_ca_dir, has_own_authority, own_authority, user_authority


def find_authority(mesh: Mesh, ca_dir: Path | None, state_dir: Path) -> Authority | None:
    """The catalog's own CA; else meshgen's CA in `ca_dir`, in the running local mesh of this name,
    or in the default CA directory; None when none of them exists (nothing is created here)."""
    security = mesh.security
    if security.ca_cert and security.ca_key:
        return user_authority(security.ca_cert, security.ca_key)
    candidates = [ca_dir] if ca_dir is not None else []
    state = load_state(state_dir)
    if ca_dir is None and state is not None and state.mesh == mesh.name:
        candidates.append(state_dir / CA_DIR)
    if ca_dir is None:
        candidates.append(default_ca_dir(mesh.name))
    for candidate in candidates:
        if has_own_authority(candidate):
            return own_authority(candidate, security.trust_domain, security.ca_lifetime)
    return None
