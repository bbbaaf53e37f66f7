"""The mesh on this machine: apps, real Envoy sidecars and a trace collector, on loopback."""
