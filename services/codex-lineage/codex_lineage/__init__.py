"""codex-lineage: OpenLineage runs and a tamper-evident audit trail derived from every topic of the fleet."""
