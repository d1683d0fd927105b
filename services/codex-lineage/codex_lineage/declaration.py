"""codex-lineage, declared like a stage (moe_core.service_declaration): it records every topic (its own
group) and publishes the signed checkpoints of the audit chains and, for `replay rerun`, a request again."""

from codex_lineage.settings import LineageSettings
from moe_core.service_declaration import ServiceDeclaration
from moe_core.stage import EVERY_TOPIC, Consumes

SERVICE = ServiceDeclaration(
    name="codex-lineage",
    settings=LineageSettings,
    summary="Every topic (own group) -> the hash-chained audit store and OpenLineage runs in Postgres; "
            "POST /api/v1/lineage; the replay command",
    consumes=(Consumes(EVERY_TOPIC, None, "record", description="every message, recorded once in order"),),
    publishes=("audit_checkpoints", "requests"),
    needs=("postgres",),
)
