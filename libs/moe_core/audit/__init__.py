"""The audit trail: every message of every topic for a request, as stored records that form a hash chain,
and the OpenLineage events derived from them (written by codex-lineage, read by the gateway's audit API
and the replay command)."""
