"""Envoy v3 sidecar configs, one directory per service instance."""

from meshgen.render.envoy.layout import Layout, SidecarPaths
from meshgen.render.envoy.sidecar import SIDECAR_FILES, render_envoy, render_sidecar

__all__ = ["SIDECAR_FILES", "Layout", "SidecarPaths", "render_envoy", "render_sidecar"]
