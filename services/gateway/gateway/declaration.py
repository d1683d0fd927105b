"""The edge, declared like a stage (moe_core.stage.declaration): what it reads and publishes on the bus
and the stores it needs. gateway.app makes exactly the declared subscriptions."""

from gateway.settings import GatewaySettings
from moe_core.contracts import Answer, AnswerDelta, Progress
from moe_core.stage.declaration import ServiceDeclaration
from moe_core.stage.spec import Consumes, Notes

SERVICE = ServiceDeclaration(
    name="gateway",
    settings=GatewaySettings,
    summary="The edge: the OpenAI, Anthropic and Responses protocols; a request in (key check, limits, budgets), "
            "its events streamed back (resumable)",
    consumes=(
        Consumes("answers", Answer, "deliver_answer", group=False, signed=True,  # a forged answer reaches no client
                 description="every replica reads every partition and keeps the answers it waits for"),
        # progress and deltas are shown to the client as they come: a declared producer's too, or never shown
        Consumes("progress", Progress, "deliver", group=False, signed=True,
                 description="live progress of waited-for requests"),
        Consumes("deltas", AnswerDelta, "deliver", group=False, signed=True,
                 description="answer tokens as they are written"),
    ),
    # housekeeping: a client's own chores, answered by the planner past the pipeline (moe_core.llm.housekeeping);
    # answers: exact-cache hits; audit: the routing of a housekeeping request; usage: each settled request's charge
    # (the control plane writes it)
    publishes=("requests", "housekeeping", "cancel", "answers", "audit", "usage"),
    needs=("redis", "postgres"),  # postgres: the key check only (read)
    notes=Notes(keeps="Postgres: reads `api_keys`/`tenants` (SHA-256 hashes only), nothing else "
                    "(usage goes out on the `usage` topic); in-process map of waiting requests; "
                    "Redis limits and reservations, resumable streams, stored responses, "
                    "`gateway:answer:<ns>:<response_id>` (owner and metadata of each answer for "
                    "`POST /v1/feedback`, `MOE_FEEDBACK_WINDOW_S`, `moe_core.llm.answer_records`), "
                    "reads `cache:exact:<ns>:*`",
                dedupe="keeps only the replies whose `response_id` it is waiting for",
                redelivery="duplicates or replies of other replicas are dropped; after the first "
                           "`Answer` the request is closed and later copies are ignored"),
)
