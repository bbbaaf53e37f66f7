"""Processes meshgen runs in a mesh besides Envoy: the demo service and the trace collector."""
