"""The control plane, declared like a stage (moe_core.stage.declaration): it reads the edge's usage charges
(and writes them to Postgres: control_plane.usage.recorder); it publishes the audit events of administration,
ratings and knowledge for the graph, and the charges its settle sweeper makes (control_plane.usage.settle_sweep), which
reads Answers back from the answers topic without a subscription. control_plane.app makes exactly the declared
subscriptions."""

from control_plane.settings import ControlPlaneSettings
from moe_core.contracts import UsageCharged
from moe_core.stage.declaration import ServiceDeclaration
from moe_core.stage.spec import Consumes, Notes

SERVICE = ServiceDeclaration(
    name="control-plane",
    settings=ControlPlaneSettings,
    summary="Administration: tenants and keys, usage and the limits' status, knowledge imports and quarantine "
            "review, tenant documents, the audit and lineage API, operator endpoints, feedback, the console; "
            "settles the requests of an edge replica that died",
    consumes=(
        # a charge counts only with the signature of a declared producer of `usage` (the edge, the settle sweeper)
        Consumes("usage", UsageCharged, "record_usage", linger=True, signed=True,
                 description="each settled request's charge, written once per response id (usage_requests, "
                             "usage_daily)"),
    ),
    reads=("answers",),  # the settle sweeper: the Answers of requests whose edge replica died, read back by key
    publishes=("audit", "feedback", "ingest", "usage"),
    needs=("redis", "postgres", "neo4j", "chroma"),
    notes=Notes(keeps="Postgres: `api_keys`, `tenants` (the admin API), "
                    "`usage_daily`/`usage_requests` (written from the `usage` topic, read by `GET"
                    " /v1/usage`), `knowledge_change_sets`, `knowledge_approvals` (imports "
                    "awaiting the four-eyes approval, [knowledge-bundles.md](knowledge-"
                    "bundles.md)), `guardrail_simulations`, `guardrail_proposals` (guardrail "
                    "rule changes awaiting a second person, [security.md](security.md)), "
                    "`egress_policy_changes` (egress policy candidates: simulation, proposal, decision; an approval "
                    "is pushed to OPA); writes the guardrail "
                    "rules file (`MOE_GUARDRAILS_FILE`) when a change is approved; reads the audit store; reads "
                    "and decides in Neo4j for "
                    "`/graph/*`; Chroma (tenant documents); Redis: console sessions, reads "
                    "`gateway:answer:*` (feedback)",
                dedupe="a `usage` event is written once per response id (`usage_requests`)",
                redelivery="a repeated charge changes nothing"),
)
