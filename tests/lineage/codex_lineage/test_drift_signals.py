"""Data health of the semantic cache and the experts' scores on the live lineage fleet: answers (cache hits or
not) and users' ratings published on the real broker, recorded by codex-lineage in the real audit store, come
back from GET /v1/health/drift/cache and /scores with their flags on the ok/info/warn/crit ladder and a history
per window; a redelivered rating and a replay count nothing; the critical checks are counted in
moe_data_health_signals; unknown tenants are 404 and bad parameters 400 in the API's envelope."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from moe_core.contracts import Answer, Feedback, ModelUse, deadline_in
from tests.lineage.conftest import Keys, LineageFleet
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e


def _rid() -> str:
    return f"r-{uuid.uuid4().hex[:12]}"


def _answer(tenant: str, at: datetime, hit: bool, rid: str | None = None, **extra: Any) -> Answer:
    return Answer(response_id=rid or _rid(), tenant_id=tenant, created_at=at, deadline_at=deadline_in(3600),
                  mode="moe-orchestrator", content="an answer", cache_hit=hit,
                  cache_key="ck-1" if hit else None, **extra)


def _rating(tenant: str, at: datetime, rid: str, rating: int, uses: tuple[tuple[str, str], ...] = ()) -> Feedback:
    return Feedback(response_id=rid, tenant_id=tenant, created_at=at, deadline_at=deadline_in(3600), rating=rating,
                    models_used=[ModelUse(model=m, category=c) for c, m in uses])


def _wait(fleet: LineageFleet, key: str, path: str, tenant: str, ready: Any) -> dict[str, Any]:
    end, body = time.monotonic() + 90, {}
    while time.monotonic() < end:
        response = fleet.get(path, key, tenant=tenant, periods="3")
        if response.status_code == 200:
            body = response.json()
            if ready(body):
                return body
        time.sleep(0.5)
    raise AssertionError(f"{path}: {body}")


def _gauge(fleet: LineageFleet, check: str, severity: str) -> float:
    text = httpx.get(f"{fleet.lineage}/metrics", timeout=10).text
    prefix = f'moe_data_health_signals{{check="{check}",severity="{severity}"}} '
    line = next((ln for ln in text.splitlines() if ln.startswith(prefix)), None)
    return float(line.split()[-1]) if line else -1.0


def test_false_cache_hits_and_a_falling_score_are_flagged(lineage_fleet: LineageFleet, keys: Keys,
                                                          infra: dict[str, str]) -> None:
    tenant = new_namespace("health")
    now = datetime.now(UTC)
    recent, earlier, old = now - timedelta(hours=2), now - timedelta(hours=30), now - timedelta(hours=100)
    answers = [_answer(tenant, earlier, hit=i < 8) for i in range(10)]  # the baseline: 8 of 10 from the cache
    window = [_answer(tenant, recent, hit=i < 3) for i in range(10)]  # the window: 3 of 10
    answers += [*window, _answer(tenant, recent, hit=True, replay_of=window[0].response_id)]  # a replay: not counted
    ratings = [_rating(tenant, now - timedelta(hours=1), window[i].response_id, r) for i, r in enumerate((1, 2, 5))]
    ratings.append(ratings[0])  # redelivered: counted once
    for at, rating, n in ((earlier, 5, 4), (recent, 1, 4)):
        ratings += [_rating(tenant, at, _rid(), rating, (("general", "m-drop"),)) for _ in range(n)]
    ratings += [_rating(tenant, old, _rid(), 5, (("science", "m-stale"),)) for _ in range(3)]
    ratings += [_rating(tenant, at, _rid(), 4, (("general", "m-ok"),)) for at in (earlier,) * 3 + (recent,) * 3]
    lineage_fleet.publish([(a, "answers") for a in answers], service="merger")
    lineage_fleet.publish([(f, "feedback") for f in ratings], service="control-plane")

    cache = _wait(lineage_fleet, keys.admin, "/v1/health/drift/cache", tenant,
                  lambda b: b["data"] and b["data"][0]["window"]["rated_hits"] == 3
                  and b["data"][0]["window"]["answers"] == 10 and b["data"][0]["baseline"]["answers"] == 10)
    [check] = cache["data"]
    assert check["dataset"] == f"cache/{tenant}" and check["severity"] == "crit"
    assert check["flags"] == ["cache_false_hits", "cache_hit_rate_drop"]
    assert check["window"] == {"answers": 10, "hits": 3, "hit_rate": 0.3, "rated_hits": 3, "false_hits": 2,
                               "false_hit_rate": 0.667}
    assert check["baseline"]["hits"] == 8 and check["baseline"]["hit_rate"] == 0.8
    assert [h["severity"] for h in check["history"]] == ["crit", "ok", "info"]  # the day before: 8 of 10, no ratings
    assert check["history"][1]["window"]["hit_rate"] == 0.8 and check["history"][1]["flags"] == []
    assert cache["summary"]["by_flag"] == {"cache_false_hits": 1, "cache_hit_rate_drop": 1}

    scores = _wait(lineage_fleet, keys.admin, "/v1/health/drift/scores", tenant, lambda b: len(b["data"]) == 3
                   and all(s["window"]["ratings"] + s["baseline"]["ratings"] >= 3 for s in b["data"])
                   and next(s for s in b["data"] if s["model"] == "m-drop")["window"]["ratings"] == 4)
    items = {(s["category"], s["model"]): s for s in scores["data"]}
    drop = items[("general", "m-drop")]
    assert drop["severity"] == "crit" and drop["flags"] == ["score_drop"] and drop["dataset"] == f"scores/{tenant}"
    assert drop["baseline"]["score"] == 0.833 and drop["window"]["score"] == 0.167
    stale = items[("science", "m-stale")]
    assert stale["severity"] == "warn" and stale["flags"] == ["score_stale"] and stale["window"]["ratings"] == 0
    assert items[("general", "m-ok")]["severity"] == "ok" and items[("general", "m-ok")]["flags"] == []
    assert [s["model"] for s in lineage_fleet.get("/v1/health/drift/scores", keys.admin, tenant=tenant,
                                                   severity="crit").json()["data"]] == ["m-drop"]

    # the tenant's own admin sees its checks; another tenant's admin gets the 404 of an unknown tenant and its
    # lists hold none of them; the operator's lists hold them
    [own] = new_keys(infra["postgres"], ("health-own-admin", "admin", [tenant]))
    for path in ("/v1/health/drift/cache", "/v1/health/drift/scores"):
        assert {c["tenant"] for c in lineage_fleet.get(path, own).json()["data"]} == {tenant}
        refused = lineage_fleet.get(path, keys.tenant_admin, tenant=tenant)
        unknown = lineage_fleet.get(path, keys.tenant_admin, tenant="no-such-tenant-x1")
        assert refused.status_code == unknown.status_code == 404, refused.text
        assert refused.json()["error"]["message"] == unknown.json()["error"]["message"].replace(
            "no-such-tenant-x1", tenant)
        assert tenant not in {c["tenant"] for c in lineage_fleet.get(path, keys.tenant_admin).json()["data"]}
        assert tenant in {c["tenant"] for c in lineage_fleet.get(path, keys.admin).json()["data"]}
    end = time.monotonic() + 60
    while min(_gauge(lineage_fleet, "cache", "crit"), _gauge(lineage_fleet, "scores", "crit")) < 1 \
            and time.monotonic() < end:  # the periodic evaluation (2 s here)
        time.sleep(0.5)
    assert _gauge(lineage_fleet, "cache", "crit") >= 1 and _gauge(lineage_fleet, "scores", "crit") >= 1


def test_unknown_tenants_are_404_and_bad_parameters_400(lineage_fleet: LineageFleet, keys: Keys) -> None:
    for path in ("/v1/health/drift/cache", "/v1/health/drift/scores"):
        for params, status, code in (({"tenant": "no-such-tenant-x1"}, 404, "not_found"),
                                     ({"tenant": "bad tenant!"}, 400, "invalid_value"),
                                     ({"hours": "nan"}, 400, "invalid_value"),
                                     ({"periods": "0"}, 400, "invalid_value"),
                                     ({"periods": "91"}, 400, "invalid_value"),
                                     ({"severity": "fatal"}, 400, "invalid_value")):
            response = lineage_fleet.get(path, keys.admin, **params)
            assert response.status_code == status, (path, params, response.text)
            assert response.json()["error"]["code"] == code
        assert lineage_fleet.get(path, None).status_code == 401
        assert lineage_fleet.get(path, keys.user).status_code == 403
