"""The control plane, declared like a stage (moe_core.service_declaration): it reads the edge's usage charges
(and writes them to Postgres: control_plane.usage_recorder); it publishes the audit events of administration,
ratings and knowledge for the graph, and the charges its settle sweeper makes (control_plane.settle_sweep), which
reads Answers back from the answers topic without a subscription. control_plane.app makes exactly the declared
subscriptions."""

from control_plane.settings import ControlPlaneSettings
from moe_core.contracts import UsageCharged
from moe_core.service_declaration import ServiceDeclaration
from moe_core.stage import Consumes

SERVICE = ServiceDeclaration(
    name="control-plane",
    settings=ControlPlaneSettings,
    summary="Administration: tenants and keys, usage and the limits' status, knowledge imports and quarantine "
            "review, tenant documents, the audit and lineage API, operator endpoints, feedback, the console; "
            "settles the requests of an edge replica that died",
    consumes=(
        Consumes("usage", UsageCharged, "record_usage",
                 description="each settled request's charge, written once per response id (usage_requests, "
                             "usage_daily)"),
    ),
    reads=("answers",),  # the settle sweeper: the Answers of requests whose edge replica died, read back by key
    publishes=("audit", "feedback", "ingest", "usage"),
    needs=("redis", "postgres", "neo4j", "chroma"),
)
