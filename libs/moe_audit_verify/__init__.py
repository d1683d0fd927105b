"""moe_audit_verify: the standalone verifier of an exported audit period of the MoE Sovereign Fleet.

It needs no database and no fleet: only the export (entries, checkpoints, RFC 3161 timestamps), codex-lineage's
public key and the timestamp authority's certificate chain. It imports nothing of the fleet (its only
dependencies are `cryptography` and `rfc3161-client`), so an auditor can run it on a machine of their own.
The entry and checkpoint formats are defined here (format.py); codex-lineage writes them with this module."""
