"""The LLM request's domain: `inference` (the servers and the client), `templates` and their tenants' and
published versions, `modes` and `model_map`, answer shaping (`shaping`, `structured`, `deltas`, `tool_choice`),
token budgets, images, `input_limits`, `guardrails`, switches, the edge's `exact_cache` and `answer_records`,
client `housekeeping`, and `unicode_text`."""
