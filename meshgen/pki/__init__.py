"""Certificates for the mesh: its CA, sidecar identities, and where they are kept."""
