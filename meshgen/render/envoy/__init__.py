"""Envoy v3 sidecar configs, one directory per service instance."""

from meshgen.render.envoy.documents import file_order
from meshgen.render.envoy.layout import Layout, SidecarPaths
from meshgen.render.envoy.sidecar import render_envoy, render_sidecar

__all__ = ["Layout", "SidecarPaths", "file_order", "render_envoy", "render_sidecar"]
