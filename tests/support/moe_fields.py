"""The fleet's own fields of an answer (`moe`: response_id, cache_hit, experts_used, sources, missing, template; a
stream's final chunk also revised, overhead_ms, model_ms), read from a JSON body or an openai SDK object, which keeps
a field OpenAI does not define in `model_extra`."""

from __future__ import annotations

from typing import Any


def moe(answer: Any) -> dict[str, Any]:
    body = answer if isinstance(answer, dict) else (answer.model_extra or {})
    fields = body.get("moe")
    assert isinstance(fields, dict), f"no `moe` object in {str(body)[:300]}"
    return fields
