"""The cache check's counts, counted by Postgres: per tenant and window, the answers (the first not failed of each
request), the cache hits among them, and the hits rated and rated 1-2 (the first rating of each request). Only the
counts come back: codex-lineage held every answer and rating of the window and its baseline (8 days by default, ~0.7
KB each while it evaluated them, every MOE_COMPLIANCE_INTERVAL_S; issue 52)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from codex_lineage.drift.signals import CacheCounts

COUNTS = """
WITH answered AS (
  SELECT DISTINCT ON (tenant_id, response_id) tenant_id, response_id, created_at,
         coalesce((payload::jsonb ->> 'cache_hit')::boolean, false) AS hit
  FROM audit_log WHERE message_type = 'Answer' AND kind = 'record'
    AND recorded_at >= $1 AND created_at >= $1 AND created_at < $2
    AND ($3::text IS NULL OR tenant_id = $3) AND payload::jsonb ->> 'replay_of' IS NULL
    AND NOT coalesce(jsonb_typeof(payload::jsonb -> 'error') = 'object', false)
  ORDER BY tenant_id, response_id, seq),
rated AS (
  SELECT DISTINCT ON (tenant_id, response_id) tenant_id, response_id, (payload::jsonb ->> 'rating')::int AS rating
  FROM audit_log WHERE message_type = 'Feedback' AND kind = 'record'
    AND recorded_at >= $1 AND created_at >= $1 AND created_at < $2
    AND ($3::text IS NULL OR tenant_id = $3) AND payload::jsonb ->> 'replay_of' IS NULL
    AND payload::jsonb ->> 'rating' IS NOT NULL
  ORDER BY tenant_id, response_id, seq)
SELECT a.tenant_id, w.i, count(*) AS answers, count(*) FILTER (WHERE a.hit) AS hits,
       count(*) FILTER (WHERE a.hit AND r.rating IS NOT NULL) AS rated_hits,
       count(*) FILTER (WHERE a.hit AND r.rating <= 2) AS false_hits
FROM answered a LEFT JOIN rated r USING (tenant_id, response_id)
JOIN unnest($4::timestamptz[], $5::timestamptz[]) WITH ORDINALITY AS w(lo, hi, i)
  ON a.created_at >= w.lo AND a.created_at < w.hi
GROUP BY a.tenant_id, w.i
"""


async def cache_counts(pool: Any, since: datetime, until: datetime, tenant: str | None,
                       windows: list[tuple[datetime, datetime]]) -> dict[str, list[CacheCounts]]:
    """Per tenant with an answer in [since, until), its counts in each of `windows` ([start, end), in order)."""
    rows = await pool.fetch(COUNTS, since, until, tenant, [w[0] for w in windows], [w[1] for w in windows])
    out: dict[str, list[CacheCounts]] = {}
    for row in rows:
        counts = out.setdefault(row["tenant_id"], [CacheCounts() for _ in windows])
        counts[row["i"] - 1] = CacheCounts(row["answers"], row["hits"], row["rated_hits"], row["false_hits"])
    return out
