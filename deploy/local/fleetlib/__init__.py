"""Internals of fleetctl, the local infrastructure supervisor (see deploy/local/README.md)."""
