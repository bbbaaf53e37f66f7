"""meshgen's benchmark suite: generator scaling, data-plane overhead, route convergence and
provisioning, measured side by side in one run. Run it with `python -m bench` (see README.md)."""
