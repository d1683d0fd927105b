"""codex-lineage, declared like a stage (moe_core.stage.declaration): it records every topic (its own
group) and publishes the signed checkpoints of the audit chains and, for `replay rerun`, a request again."""

from codex_lineage.settings import LineageSettings
from moe_core.stage.declaration import ServiceDeclaration
from moe_core.stage.spec import EVERY_TOPIC, Consumes, Notes

SERVICE = ServiceDeclaration(
    name="codex-lineage",
    settings=LineageSettings,
    summary="Every topic (own group) -> the hash-chained audit store and OpenLineage runs in Postgres; "
            "POST /api/v1/lineage; the replay command",
    consumes=(Consumes(EVERY_TOPIC, None, "record", linger=True,
                       description="every message, recorded once in order"),),
    publishes=("audit_checkpoints", "requests", "audit"),  # audit: the signing key's rotation (rotate_key)
    needs=("postgres",),
    notes=Notes(keeps="Postgres schema `MOE_AUDIT_SCHEMA` (`audit`): `audit_log` (one "
                    "Ed25519-signed hash chain per tenant: every record and OpenLineage event), "
                    "`audit_checkpoints` (signed, RFC 3161-timestamped checkpoints), views "
                    "`audit_records`, `lineage_events` ([audit.md](audit.md))",
                dedupe="an audit record is unique by (topic, partition, offset); a lineage event "
                       "by (run, type, time, job)",
                redelivery="the record and its events are not stored again"),
)
