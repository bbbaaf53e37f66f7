"""The mesh's metrics read back: Prometheus's text format, the sidecars and Prometheus as sources,
requests, errors and durations per service and per edge (`meshgen top`), Grafana dashboards."""
