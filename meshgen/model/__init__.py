"""The resolved mesh: the single source of truth every renderer reads."""

from meshgen.model.load import load_mesh
from meshgen.model.mesh import (
    CircuitBreaker,
    Dependency,
    External,
    HealthCheck,
    Host,
    Instance,
    Mesh,
    RateLimit,
    Retries,
    Route,
    Service,
    Tracing,
)

__all__ = [
    "CircuitBreaker",
    "Dependency",
    "External",
    "HealthCheck",
    "Host",
    "Instance",
    "Mesh",
    "RateLimit",
    "Retries",
    "Route",
    "Service",
    "Tracing",
    "load_mesh",
]
