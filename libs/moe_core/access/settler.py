"""Settling a request's usage once fleet-wide, whoever settles it: the edge's metering (gateway.metering: the
owner on its Answer or when it is abandoned, a replica that resumed its stream) and the control plane's sweeper
(control_plane.usage.settle_sweep: the requests whose edge replica died). Each claims the request's hold
(moe_core.access.settlement); only the claim's holder charges it: the usage event on the `usage` topic
(acknowledged by the broker; the control plane writes it as one row per response id), then the counters (once),
then this process's Prometheus usage counters."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from moe_core.access.settlement import Claim, Hold, Kind, Settlements, Write
from moe_core.access.usage_metrics import count_usage
from moe_core.contracts import Answer, UsageCharged
from moe_core.llm.token_budget import TokenBudgets

log = logging.getLogger(__name__)
PublishUsage = Callable[[UsageCharged], Awaitable[object]]


class Settler:
    def __init__(self, redis: Redis, namespace: str, publish_usage: PublishUsage) -> None:
        """publish_usage: hands a settled request's charge on and returns once it is durable (published to the
        `usage` topic with the broker's acknowledgement)."""
        self.publish_usage = publish_usage
        self.budgets = TokenBudgets(redis, namespace)
        self.settlements = Settlements(redis, namespace, self.budgets)

    async def settle_orphan(self, response_id: str, answer: Answer | None) -> bool:
        """A request whose owner did not settle it, by its Answer if there is one; True if this call charged it."""
        if answer is not None:
            return (await self._settle_answer(answer, "sweeper"))[1]
        return await self.close(response_id, "spent", "sweeper")

    async def _settle_answer(self, answer: Answer, by: str, also: Write | None = None) -> tuple[Claim | None, bool]:
        """The claim (None: Redis failed, and `also` was not written), and whether this call charged it. also: a
        write sent with the claim (Settlements.claim)."""
        claim = await self._claim(answer.response_id, "answer", answer.usage.prompt_tokens,
                                  answer.usage.completion_tokens, "answered", also)
        charged = claim is not None and claim.state == "mine" and await self._charge(answer.response_id, claim, by)
        return claim, charged

    async def close(self, response_id: str, kind: Kind, by: str) -> bool:
        """Settle a request without its Answer: `spent` charges what its model calls used or still hold (its
        budget is closed: no further call runs), `withdraw` gives the reservation back; True if this call did."""
        claim = await self._claim(response_id, kind, outcome="abandoned")
        if claim is None or claim.state != "mine":
            return False
        return await self._charge(response_id, claim, by)

    async def _claim(self, response_id: str, kind: Kind, prompt: int = 0, completion: int = 0,
                     outcome: str = "answered", also: Write | None = None,
                     reserved: Hold | None = None) -> Claim | None:
        try:
            return await self.settlements.claim(response_id, kind, prompt, completion, outcome, also=also,
                                                reserved=reserved)
        except (RedisError, OSError) as exc:  # the hold stays: the sweeper settles it once Redis is back
            log.warning("usage of %s not settled now: %s", response_id, exc)
            return None

    async def _charge(self, response_id: str, claim: Claim, by: str, published: bool = False) -> bool:
        """The usage event (acknowledged by the broker; published: the caller's already was, see usage_event),
        then the counters (once): a failure in between leaves the hold to the sweeper, which repeats both; the
        event's writer keeps one row per response id and the counters are finished once, so nothing is charged
        twice."""
        hold = claim.hold
        assert hold is not None
        cost = hold.cost(claim.prompt, claim.completion)
        charged = claim.outcome != "withdrawn"
        try:
            if charged and not published:
                await self.publish_usage(usage_event(response_id, claim, by))
            first = await self.settlements.finish(response_id, claim)
        except Exception:  # the answer matters more than its accounting; retried by the sweeper
            log.exception("usage of %s (%s/%s) not settled", response_id, hold.tenant_id, hold.key_id)
            return False
        if charged and first:  # this process's Prometheus counters, once per request fleet-wide
            count_usage(hold.tenant_id, hold.key_id, hold.mode, hold.model, 1, claim.prompt, claim.completion, cost)
        return True


def usage_event(response_id: str, claim: Claim, by: str) -> UsageCharged:
    """The usage event of a claimed request (the control plane writes one row per response id)."""
    hold = claim.hold
    assert hold is not None
    return UsageCharged(
        response_id=response_id, tenant_id=hold.tenant_id, deadline_at=datetime.fromtimestamp(hold.deadline, UTC),
        key_id=hold.key_id, mode=hold.mode, model=hold.model, prompt_tokens=claim.prompt,
        completion_tokens=claim.completion, cost_micros=hold.cost(claim.prompt, claim.completion),
        outcome=claim.outcome, settled_by=by)  # type: ignore[arg-type]
