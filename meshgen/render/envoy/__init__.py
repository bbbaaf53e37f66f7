"""Envoy v3 sidecar configs, one directory per service instance."""

from meshgen.render.envoy.sidecar import SIDECAR_FILES, render_envoy, render_sidecar

__all__ = ["SIDECAR_FILES", "render_envoy", "render_sidecar"]
