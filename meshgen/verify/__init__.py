"""Behaviour checks derived from the catalog, run against a live mesh.

The same library serves `meshgen verify` (the local mesh) and the on-prem testinfra tests: it
needs only the resolved model and network reach to the addresses the model names.
"""

from meshgen.verify.checks import CheckResult, Skipped, run_checks

__all__ = ["CheckResult", "Skipped", "run_checks"]
