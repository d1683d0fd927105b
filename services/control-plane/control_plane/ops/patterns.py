"""GET /v1/admin/planner-patterns: the most frequent plans per category.

A plan's pattern is the shape of its tasks (kind and category of each, tools by name), in the order planned.
Sources: the planner's plan cache in Redis (one entry per distinct question the planner model planned,
`planner:plancache:<ns>:*`, see planner.plan_cache), and the feedback the gateway recorded for its answers
(`gateway:answer:<ns>:<id>` and its `:rated` mark): a rated answer whose question has a cached plan (in
any mode) adds its rating to that plan's pattern. Both are bounded (MOE_OPS_PATTERNS_SCAN entries each).
`learned` lists the planner's learned patterns (planner.learned_patterns: the expert combinations of answers
rated 4 or 5, kept 180 days after their last success, per tenant) of the tenants the admin may see (the fleet
operator: every tenant's), most successful first.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from moe_core.llm.answer_records import PREFIX as ANSWER_PREFIX
from moe_core.llm.exact_cache import question_key
from moe_core.llm.modes import MODES


def pattern_of(tasks: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(f"{t.get('kind', 'expert')}:{t.get('tool') or t.get('category', '?')}" for t in tasks)


async def _scan(redis: Redis, match: str, limit: int) -> list[str]:
    names: list[str] = []
    async for name in redis.scan_iter(match=match, count=500):
        names.append(name.decode() if isinstance(name, bytes) else str(name))
        if len(names) >= limit:
            break
    return names


async def planner_patterns(redis: Redis, namespace: str, scan: int, top: int,
                           category: str | None = None, tenants: list[str] | None = None) -> dict[str, Any]:
    prefix = f"planner:plancache:{namespace}"
    keys = [k for k in await _scan(redis, f"{prefix}:*", scan)]
    values = await redis.mget(keys) if keys else []
    plans: dict[str, tuple[str, ...]] = {}  # cache key -> pattern
    info: dict[tuple[str, ...], dict[str, Any]] = {}
    for key, raw in zip(keys, values, strict=True):
        try:
            cached = json.loads(raw) if raw else None
        except (json.JSONDecodeError, TypeError):
            continue
        if not isinstance(cached, dict) or not isinstance(cached.get("tasks"), list) or not cached["tasks"]:
            continue
        shape = pattern_of(cached["tasks"])
        plans[key] = shape
        entry = info.setdefault(shape, {"plans": 0, "ratings": [], "complexity": defaultdict(int),
                                        "categories": sorted({str(t.get("category")) for t in cached["tasks"]}),
                                        "planner_models": set()})
        entry["plans"] += 1
        entry["complexity"][str(cached.get("complexity", "moderate"))] += 1
        if cached.get("planner_model"):
            entry["planner_models"].add(str(cached["planner_model"]))
    rated = await _rated_answers(redis, namespace, scan)
    for question, rating in rated:
        for mode in MODES:
            shape = plans.get(question_key(prefix, mode, question))  # type: ignore[assignment]
            if shape is not None:
                info[shape]["ratings"].append(rating)
                break
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for shape, entry in info.items():
        ratings = entry["ratings"]
        row = {"pattern": list(shape), "plans": entry["plans"], "ratings": len(ratings),
               "mean_rating": round(sum(ratings) / len(ratings), 2) if ratings else None,
               "complexity": dict(entry["complexity"]), "planner_models": sorted(entry["planner_models"])}
        for cat in entry["categories"]:
            by_category[cat].append(row)
    data = [{"category": cat, "patterns": sorted(rows, key=lambda r: (-r["plans"], -r["ratings"], r["pattern"]))[:top]}
            for cat, rows in sorted(by_category.items()) if category is None or cat == category]
    return {"object": "list", "data": data, "plan_cache_entries": len(plans), "rated_answers": len(rated),
            "learned": await learned_patterns(redis, namespace, top, category, tenants, scan)}


async def learned_patterns(redis: Redis, namespace: str, top: int, category: str | None = None,
                           tenants: list[str] | None = None, scan: int = 2000) -> list[dict[str, Any]]:
    """The planner's learned expert combinations (its per-tenant `planner:success` keys) of `tenants` (None: every
    tenant's, at most `scan`), most successful first; a combination several tenants learned sums their successes."""
    prefix = f"planner:success:{namespace}:"
    if tenants is None:
        tenants = [k[len(prefix):] for k in await _scan(redis, f"{prefix}*", scan)]
    merged: dict[str, dict[str, Any]] = {}
    for tenant in sorted(set(tenants)):
        recent = cast(list[tuple[Any, float]], await redis.zrange(prefix + tenant, 0, -1, withscores=True))
        if not recent:
            continue
        names = [m.decode() if isinstance(m, bytes) else str(m) for m, _ in recent]
        counts = await redis.hmget(f"planner:success-count:{namespace}:{tenant}", names)
        for name, c, (_, at) in zip(names, counts, recent, strict=True):
            if category is not None and category not in name.split("+"):
                continue
            row = merged.setdefault(name, {"pattern": name.split("+"), "successes": 0, "at": 0.0, "tenants": []})
            row["successes"] += int(c or 0)
            row["at"] = max(row["at"], float(at))
            row["tenants"].append(tenant)
    rows: list[dict[str, Any]] = [
        {"pattern": r["pattern"], "successes": r["successes"], "tenants": r["tenants"],
         "last_success": datetime.fromtimestamp(r["at"], UTC).isoformat()} for r in merged.values()]
    rows.sort(key=lambda r: (-int(r["successes"]), str(r["last_success"])))
    return rows[:top]


async def _rated_answers(redis: Redis, namespace: str, scan: int) -> list[tuple[str, int]]:
    """(question, rating) of the answers rated through POST /v1/feedback that are still recorded."""
    marks = await _scan(redis, f"{ANSWER_PREFIX}:{namespace}:*:rated", scan)  # moe_core.llm.answer_records
    if not marks:
        return []
    records = await redis.mget([m[: -len(":rated")] for m in marks])
    ratings = await redis.mget(marks)
    out: list[tuple[str, int]] = []
    for record, rating in zip(records, ratings, strict=True):
        try:
            question = json.loads(record).get("question") if record else None
            value = int(rating) if rating is not None else None
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
            continue
        if question and value is not None:
            out.append((str(question), value))
    return out
