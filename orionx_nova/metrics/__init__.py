"""Prometheus metrics of the pool, served by orionx-api at ``/metrics``."""
