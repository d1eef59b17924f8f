"""Free loopback ports: the reference backend's helper, which the demo stack uses too (never 8080)."""
from chronon_reference_backend.process import free_port

__all__ = ["free_port"]
