"""Ansible data for on-prem hosts: an inventory, per-host variables, and the sidecar configs the
generic roles under roles/ deploy. The generator writes data; the roles hold the logic."""

from meshgen.render.ansible.inventory import ONPREM_CONFIG_ROOT, OnpremOptions, render_onprem

__all__ = ["ONPREM_CONFIG_ROOT", "OnpremOptions", "render_onprem"]
