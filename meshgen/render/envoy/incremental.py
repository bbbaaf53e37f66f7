"""Which sidecars a catalog change can affect, so `generate` renders only those.

A sidecar of service S is rendered from S itself (its versions, instances, hosts, routes,
dependencies, authorization), the services S calls (their routes, versions and instances make
S's clusters and routes), the services that call S (S admits them, and its listener's header
names them), the gateways routing to S, and mesh-wide settings. So when the mesh-wide part is
the same as in the last run, a sidecar needs rendering only when its service, or a service it
calls or that calls it (before or after the change), changed. Gateway Envoys, few and reading
many services, are always rendered.

Each part is compared by a digest of its pickled resolved model (without pickle's memo, so
shared objects do not change the bytes): equal bytes mean equal state, and a spurious
difference only renders more. The mesh model holds no sets, whose order would vary from process
to process.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass
from typing import Any

from meshgen.model.mesh import Mesh


def _digest(value: object) -> str:
    # No memo ("fast" mode): an object met twice is written twice, so the bytes depend on the
    # values alone, not on which equal objects happen to be one object (the model is a tree).
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.fast = True
    pickler.dump(value)
    return hashlib.blake2b(buffer.getvalue(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Shape:
    """What the last run rendered from: the mesh-wide digest, and per service its digest, its
    sidecars (instance ids) and the services it calls."""

    mesh: str
    services: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]

    @classmethod
    def of(cls, mesh: Mesh) -> Shape:
        wide = (
            mesh.name,
            mesh.hosts,
            mesh.externals,
            mesh.tracing,
            mesh.access_log,
            mesh.max_downstream_connections,
            mesh.security,
            mesh.metrics,
            mesh.gateways,
        )
        services = {
            s.name: (_digest(s), tuple(i.id for i in s.instances), tuple(d.target for d in s.dependencies))
            for s in mesh.services
        }
        return cls(_digest(wide), services)

    def as_json(self) -> dict[str, Any]:
        return {"mesh": self.mesh, "services": {k: [d, list(i), list(c)] for k, (d, i, c) in self.services.items()}}

    @classmethod
    def from_json(cls, data: object) -> Shape | None:
        try:
            assert isinstance(data, dict)
            services = {
                str(name): (str(d), tuple(str(x) for x in i), tuple(str(x) for x in c))
                for name, (d, i, c) in data["services"].items()
            }
            return cls(str(data["mesh"]), services)
        except (AssertionError, KeyError, TypeError, ValueError, AttributeError):
            return None


def sidecars_to_render(previous: Shape, current: Shape, mesh: Mesh) -> set[str] | None:
    """The ids of the Envoys whose files may differ from the last run's; None: all of them."""
    if previous.mesh != current.mesh:
        return None
    old, new = previous.services, current.services
    changed = {name for name in old.keys() | new.keys() if old.get(name, ("",))[0] != new.get(name, ("",))[0]}
    affected = set(changed)
    for shape in (old, new):
        for name, (_, _, callees) in shape.items():
            if name in changed:
                affected.update(callees)  # they admit it, and name it in their listener's header
            if changed.intersection(callees):
                affected.add(name)  # it calls a changed service
    render = {instance for name in affected if name in new for instance in new[name][1]}
    render.update(i.id for g in mesh.gateways for i in g.instances)
    return render
