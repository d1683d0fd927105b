"""The requests an operator reads: one row per answered request, from the fleet's own stores — the signed audit
record (codex-lineage's audit_log: the request's ChatRequest and its final Answer) and the charge the control plane
wrote (usage_requests: tokens, cost, who settled it). Read through the audit store's pool (its search path holds
the audit schema, then public), so one statement joins them.

Indexed: the answers of a period (audit_log_answers, a partial index of the Answer records by broker time and
tenant, moe_core.audit.schema), the request of each (audit_log_rid), its charge (usage_requests' key). Every
value is a parameter; a page is keyset-paginated (answered_at, response_id), newest first.

Status: `error` (the answer carries an error: deadline, no model could answer, cancelled ...), `partial` (answered
with categories missing), `abandoned` (the client went away, as charged), `ok` otherwise. Latency: from the
request's record to its answer's, both broker times."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STATUSES = ("ok", "partial", "error", "abandoned")
QUESTION_CHARS = 160  # what a row shows of the question

# The requests of a period: $1 tenants (NULL: every tenant), $2 from, $3 until
ROWS = """
WITH answered AS (
    SELECT DISTINCT ON (response_id) response_id, tenant_id, broker_ts, payload::jsonb AS a
    FROM audit_log
    WHERE kind = 'record' AND message_type = 'Answer' AND broker_ts >= $2 AND broker_ts < $3
      AND ($1::text[] IS NULL OR tenant_id = ANY($1::text[]))
    ORDER BY response_id, broker_ts DESC
)
SELECT x.response_id, x.tenant_id, x.broker_ts AS answered_at,
       date_part('epoch', x.broker_ts - q.broker_ts) * 1000 AS latency_ms,
       coalesce(nullif(x.a ->> 'question', ''), q.question) AS question,
       coalesce(x.a -> 'models_used', '[]'::jsonb) AS models_used,
       coalesce((x.a ->> 'cache_hit')::boolean, false) AS cache_hit,
       x.a -> 'error' ->> 'code' AS error_code,
       coalesce(u.prompt_tokens, (x.a #>> '{usage,prompt_tokens}')::bigint, 0) AS prompt_tokens,
       coalesce(u.completion_tokens, (x.a #>> '{usage,completion_tokens}')::bigint, 0) AS completion_tokens,
       u.cost_micros, coalesce(u.model, q.model, x.a ->> 'mode') AS model, coalesce(u.mode, x.a ->> 'mode') AS mode,
       CASE WHEN u.outcome = 'abandoned' THEN 'abandoned'
            WHEN x.a -> 'error' ->> 'code' IS NOT NULL THEN 'error'
            WHEN jsonb_typeof(x.a -> 'missing') = 'array' AND jsonb_array_length(x.a -> 'missing') > 0 THEN 'partial'
            ELSE 'ok' END AS status
FROM answered x
LEFT JOIN LATERAL (
    SELECT r.broker_ts, r.payload::jsonb ->> 'mode' AS model,
           jsonb_path_query_array(r.payload::jsonb, '$.messages[*] ? (@.role == "user").content') ->> -1 AS question
    FROM audit_log r
    WHERE r.response_id = x.response_id AND r.kind = 'record' AND r.message_type = 'ChatRequest'
    ORDER BY r.seq LIMIT 1
) q ON true
LEFT JOIN usage_requests u ON u.response_id = x.response_id
"""

# $4 status, $5 model, $6 text (a LIKE pattern), $7 tenants whose questions are hidden, $8/$9 the cursor, $10 limit
PAGE = """
WITH requests AS (<rows>)
SELECT * FROM requests
WHERE ($4::text IS NULL OR status = $4)
  AND ($5::text IS NULL OR model = $5::text OR mode = $5::text
       OR models_used @> jsonb_build_array(jsonb_build_object('model', $5::text)))
  AND ($6::text IS NULL OR response_id ILIKE $6::text ESCAPE '\\'
       OR (NOT (tenant_id = ANY($7::text[]) OR '*' = ANY($7::text[])) AND question ILIKE $6::text ESCAPE '\\'))
  AND ($8::timestamptz IS NULL OR (answered_at, response_id) < ($8::timestamptz, $9::text))
ORDER BY answered_at DESC, response_id DESC
LIMIT $10
""".replace("<rows>", ROWS)  # constants only: every value is a parameter

# Per day and tenant, per tenant, per day, and in all (GROUPING SETS): the overview's figures
OVERVIEW = """
WITH requests AS (<rows>)
SELECT (answered_at AT TIME ZONE 'UTC')::date AS day, tenant_id,
       GROUPING((answered_at AT TIME ZONE 'UTC')::date) AS all_days, GROUPING(tenant_id) AS all_tenants,
       count(*) AS requests, count(*) FILTER (WHERE status = 'error') AS errors,
       count(*) FILTER (WHERE cache_hit) AS cache_hits,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms,
       sum(prompt_tokens + completion_tokens) AS tokens, sum(coalesce(cost_micros, 0)) AS cost_micros
FROM requests
GROUP BY GROUPING SETS (((answered_at AT TIME ZONE 'UTC')::date, tenant_id), (tenant_id),
                        ((answered_at AT TIME ZONE 'UTC')::date), ())
ORDER BY day NULLS LAST, tenant_id NULLS LAST
""".replace("<rows>", ROWS)


@dataclass(frozen=True)
class Filters:
    """A page's filters, validated by the API (control_plane.audit.requests_api)."""

    status: str | None = None
    model: str | None = None
    text: str | None = None
    before: tuple[datetime, str] | None = None


def like(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, its wildcards escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def page_args(tenants: list[str] | None, since: datetime, until: datetime, f: Filters, hidden: list[str],
              limit: int) -> tuple[Any, ...]:
    cursor_at, cursor_id = f.before if f.before else (None, None)
    return (tenants, since, until, f.status, f.model, like(f.text) if f.text else None, hidden, cursor_at,
            cursor_id, limit)


def row(r: Any, hidden: bool) -> dict[str, Any]:
    """One request as the API lists it; the question truncated, or None where the tenant's policy hides it."""
    question = r["question"]
    if hidden:
        question = None
    elif question is not None and len(question) > QUESTION_CHARS:
        question = question[:QUESTION_CHARS] + "…"
    models = r["models_used"]
    models = json.loads(models) if isinstance(models, str) else models
    models = models if isinstance(models, list) else []
    latency = r["latency_ms"]
    return {"response_id": r["response_id"], "tenant_id": r["tenant_id"], "answered_at": r["answered_at"].isoformat(),
            "status": r["status"], "error_code": r["error_code"], "question": question, "question_hidden": hidden,
            "latency_ms": round(float(latency), 1) if latency is not None else None,
            "model": r["model"], "mode": r["mode"],
            "models": sorted({m.get("model") for m in models if isinstance(m, dict) and m.get("model")}),
            "prompt_tokens": r["prompt_tokens"], "completion_tokens": r["completion_tokens"],
            "total_tokens": r["prompt_tokens"] + r["completion_tokens"],
            "cost": r["cost_micros"] / 1_000_000 if r["cost_micros"] is not None else None,
            "cache_hit": r["cache_hit"]}


def figures(r: Any) -> dict[str, Any]:
    """One line of the overview (a day and tenant, a tenant, a day, or the whole period)."""
    def ms(value: Any) -> float | None:
        return round(float(value), 1) if value is not None else None
    return {"requests": r["requests"], "errors": r["errors"], "cache_hits": r["cache_hits"],
            "p50_ms": ms(r["p50_ms"]), "p95_ms": ms(r["p95_ms"]), "tokens": int(r["tokens"] or 0),
            "cost": int(r["cost_micros"] or 0) / 1_000_000}
