"""Shared library of the MoE Sovereign Fleet: contracts, bus, settings, observability, inference."""
