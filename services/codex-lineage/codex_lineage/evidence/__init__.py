"""Evidence bundles: a request's or a tenant's period's signed record, its checkpoints and timestamps, its lineage
events and the verification material, with a signed manifest of digests (moe_audit_verify.evidence)."""
