"""When the current stage run started: set as a message is consumed (a broker middleware, for every
subscriber of the service), read when the run publishes, so each published envelope can say when the work
that produced it began (`started_at`: the START time of its lineage run). Nothing to do in the stages."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

from faststream import BaseMiddleware

from moe_core.contracts.envelope import utcnow
from moe_core.runtime.observability.ledger import RUN_LEDGER, RunLedger, metered

RUN_STARTED: ContextVar[datetime | None] = ContextVar("moe_run_started", default=None)
# The prompt templates the current stage run used (name -> digest; moe_core.runtime.run_versions.prompt_used): a dict
# made
# per consumed message, shared by reference with the tasks the run starts.
RUN_PROMPTS: ContextVar[dict[str, str] | None] = ContextVar("moe_run_prompts", default=None)
# The policy decisions the current stage run asked (path -> version of the policies in force;
# moe_core.runtime.run_versions.policy_used), made and shared the same way.
RUN_POLICIES: ContextVar[dict[str, str] | None] = ContextVar("moe_run_policies", default=None)


def run_started() -> datetime | None:
    return RUN_STARTED.get()


class RunClockMiddleware(BaseMiddleware):
    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        token, prompts, policies = RUN_STARTED.set(utcnow()), RUN_PROMPTS.set({}), RUN_POLICIES.set({})
        ledger = RunLedger()  # the run's handler, model and CPU time (moe_core.runtime.observability.ledger)
        costs = RUN_LEDGER.set(ledger)
        try:
            return await metered(call_next(msg), ledger)
        finally:
            RUN_LEDGER.reset(costs)
            RUN_POLICIES.reset(policies)
            RUN_PROMPTS.reset(prompts)
            RUN_STARTED.reset(token)
