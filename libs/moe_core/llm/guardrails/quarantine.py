"""The guardrail stage's record of its decisions, for a tenant admin's review (control plane:
/v1/guardrails/...): a blocked answer is quarantined (its text kept for review, never logged), a redaction
goes to the self-correction journal (which rule changed what class of text, how often and why; not the
removed text). Kept in Redis for MOE_GUARDRAIL_RETENTION_S, one index per tenant and kind; the audit
record of each decision (moe.audit.v1) is the permanent proof, this is the review copy.

Keys: `guardrail:decision:<ns>:<tenant>:<response_id>` (JSON Decision; an input redaction, journalled by the
planner: `<response_id>:input`) and
`guardrail:index:<ns>:<tenant>:<block|redact>` (sorted set of response ids by time).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from moe_core.llm.guardrails.engine import Verdict
from moe_core.llm.guardrails.rules import Direction

Kind = Literal["block", "redact"]


class Decision(BaseModel):
    response_id: str
    tenant_id: str
    direction: Direction
    action: Kind
    rule: str = Field(description="The deciding rule (block) or the first redacting rule")
    reason: str = ""
    classes: list[str] = Field(default_factory=list, description="What kind of text matched (email, iban, ...)")
    hits: list[dict[str, Any]] = Field(default_factory=list, description="Each matching rule: action, class, count")
    question: str = ""
    content: str = Field(default="", description="block: the quarantined answer as it was; redact: empty")
    created_at: float = Field(default_factory=time.time)

    @classmethod
    def of(cls, response_id: str, tenant_id: str, direction: Direction, verdict: Verdict, question: str,
           content: str) -> Decision:
        lead = verdict.blocked_by or next(h.rule for h in verdict.hits if h.rule.action == "redact")
        action: Kind = "block" if verdict.blocked_by is not None else "redact"
        return cls(response_id=response_id, tenant_id=tenant_id, direction=direction, action=action, rule=lead.id,
                   reason=lead.reason, classes=sorted({h.rule.span_class for h in verdict.hits}),
                   hits=verdict.summary(), question=question if action == "block" else "",
                   content=content if action == "block" else "")

    def listed(self) -> dict[str, Any]:
        """The list view: everything but the quarantined text."""
        return self.model_dump(exclude={"content", "question"})


class QuarantineStore:
    def __init__(self, redis: Redis, namespace: str, retention_s: int) -> None:
        self.redis = redis
        self.ns = namespace
        self.retention_s = retention_s

    def _key(self, tenant: str, rid: str) -> str:
        return f"guardrail:decision:{self.ns}:{tenant}:{rid}"

    def _index(self, tenant: str, kind: Kind) -> str:
        return f"guardrail:index:{self.ns}:{tenant}:{kind}"

    async def put_first(self, decision: Decision) -> Decision:
        """Store the decision unless one is stored for the request and direction already (a redelivery): the stored
        one. An input decision (the planner's) is kept beside the output one, as `<response_id>:input`."""
        slot = decision.response_id if decision.direction == "output" else f"{decision.response_id}:input"
        await self.redis.set(self._key(decision.tenant_id, slot), decision.model_dump_json(), nx=True,
                             ex=self.retention_s)
        stored = await self.get(decision.tenant_id, slot) or decision
        index = self._index(stored.tenant_id, stored.action)
        await self.redis.zadd(index, {slot: stored.created_at})
        await self.redis.zremrangebyscore(index, "-inf", time.time() - self.retention_s)
        await self.redis.expire(index, self.retention_s)
        return stored

    async def get(self, tenant: str, rid: str) -> Decision | None:
        raw = await self.redis.get(self._key(tenant, rid))
        return Decision.model_validate_json(raw) if raw else None

    async def list(self, tenants: list[str], kind: Kind, limit: int = 50) -> list[Decision]:
        """The newest decisions of the tenants, newest first."""
        found: list[Decision] = []
        for tenant in tenants:
            for raw in await self.redis.zrevrange(self._index(tenant, kind), 0, limit - 1):
                decision = await self.get(tenant, raw.decode() if isinstance(raw, bytes) else str(raw))
                if decision is not None:
                    found.append(decision)
        return sorted(found, key=lambda d: d.created_at, reverse=True)[:limit]
