"""Renderers: pure functions from the resolved Mesh to files, one package per target."""
