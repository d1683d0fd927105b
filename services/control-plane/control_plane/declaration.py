"""The control plane, declared like a stage (moe_core.service_declaration): it reads no topic; it publishes
the audit events of administration, ratings and knowledge for the graph."""

from control_plane.settings import ControlPlaneSettings
from moe_core.service_declaration import ServiceDeclaration

SERVICE = ServiceDeclaration(
    name="control-plane",
    settings=ControlPlaneSettings,
    summary="Administration: tenants and keys, usage, knowledge imports and quarantine review, tenant documents, "
            "the audit and lineage API, operator endpoints, feedback, the console",
    publishes=("audit", "feedback", "ingest"),
    needs=("redis", "postgres", "neo4j", "chroma"),
)
