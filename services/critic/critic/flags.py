"""The critic closes the loop: a "wrong" or "unsafe" verdict flags what the draft came from, exactly as a
1-star rating does, by publishing the same Feedback event (`source="critic"`) to `feedback`:

- the planner flags the answer's semantic-cache entry and drops its exact repeat (or, when the flag
  overtakes the answer, refuses to store it);
- graph-ingest flags the tenant's knowledge-graph relations the draft cited (its graph sources);
- the experts' scores do NOT count it: the event names no models (`models_used` is empty), so a critic
  flag is never mistaken for a user's rating of a model (per-tenant or global).

A "right" verdict publishes nothing. A replay (`replay_of`) flags nothing: it learns nothing either."""

from __future__ import annotations

from critic.core import Verdict
from moe_core.contracts import Draft, Feedback, deadline_in

FLAG_RATING = 1  # what a 1-star rating does: flag the cache entry and the cited relations
FLAG_DEADLINE_S = 3600.0  # as the gateway's ratings: the learning consumers are not bound by the request's


def flag_for(draft: Draft, verdict: Verdict) -> Feedback | None:
    """The feedback event of a wrong or unsafe verdict, or None (right, a replay, or nothing to flag)."""
    if verdict.confirmed or draft.replay_of:
        return None
    answer = draft.answer
    refs = list(dict.fromkeys(s.ref for s in answer.sources if s.kind == "graph"))
    if not answer.cache_key and not refs:
        return None
    fields = {**draft.child_fields(), "deadline_at": deadline_in(FLAG_DEADLINE_S)}
    return Feedback(**fields, rating=FLAG_RATING, models_used=[], cache_key=answer.cache_key,
                    question=answer.question or draft.question, graph_refs=refs,
                    comment=f"critic verdict: {verdict.kind}", source="critic")
