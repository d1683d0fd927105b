"""An isolated fleet (own topic namespace, scripted inference server) for end-to-end journeys."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetlib import api as fleetlib_api

from moe_core.access.keystore import Role
from tests.conftest import Scripted, scripted_env
from tests.e2e.accounts_fixtures import (  # noqa: F401  (two gateway replicas for limits, the admin API beside)
    accounts_control_plane_fixture,
    accounts_driver_fixture,
    accounts_gateway_fixture,
    admin_fixture,
    admin_key_fixture,
)
from tests.e2e.gateway_fixtures import (  # noqa: F401  (a gateway alone, the bus behind it, SDK clients)
    bare_control_plane,
    bare_gateway,
    driver,
    gw,
    gw_anthropic,
)
from tests.e2e.research_fixtures import Searx, searxng, searxng_server  # noqa: F401  (research's web)
from tests.support.fleet import Fleet
from tests.support.keys import create_key
from tests.support.namespaces import new_namespace

REQUEST_TIMEOUT_S = 45
TEMPLATES_FILE = Path(__file__).resolve().parents[1] / "data" / "templates.yaml"
GUARDRAILS_FILE = Path(__file__).resolve().parents[1] / "data" / "guardrails.yaml"  # guards tenant-guarded only


async def _create_key(dsn: str, role: Role, tenant: str) -> str:
    return await create_key(dsn, f"e2e-{role}", role, [tenant])


@pytest.fixture(scope="package")
def fleet(infra: dict[str, str], scripted_server: Scripted, scripted_server_b: Scripted,
          searxng_server: Searx) -> Iterator[Fleet]:  # noqa: F811  (the fixture, imported above)
    # the planner's semantic cache; graph-rag's store, started beside Chroma (the Fleet started Neo4j after it, a
    # minute and more on a loaded host, when this tier is the first of its worker to need Neo4j)
    fleetlib_api.ensure_up(["chroma", "neo4j"])
    namespace = new_namespace("e2e")
    env = {
        "MOE_TOPIC_NAMESPACE": namespace,
        "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
        "MOE_REDIS_URL": infra["redis"],
        "MOE_POSTGRES_DSN": infra["postgres"],
        "MOE_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        "MOE_LOG_LEVEL": "INFO",
        **scripted_env(scripted_server.url, scripted_server_b.url),
        "MOE_CHROMA_URL": infra["chroma"],
        "MOE_SEARXNG_URL": searxng_server.url,
        # The journeys script the planner model's plan: no shortcut around it (router and trivial-question
        # routes are proven in tests/infra/planner/test_semantic_cache.py); the semantic cache stays on.
        "MOE_ROUTER_ENABLED": "false",
        "MOE_PLANNER_SKIP_TRIVIAL": "false",
        "MOE_SCORE_MIN_RATINGS": "3",  # feedback journeys: a model is skipped after three bad ratings
        # named expert templates (tests/e2e/moe_core/llm/test_templates.py)
        "MOE_EXPERT_TEMPLATES_FILE": str(TEMPLATES_FILE),
        "MOE_GUARDRAILS_FILE": str(GUARDRAILS_FILE),  # tests/e2e/guardrail/test_guardrails.py
        "MOE_GUARDRAIL_CHECK_TIMEOUT_S": "0.3",  # its rule that cannot finish blocks soon
        # as if these called an outside service: a protected class may not use them (test_data_class_egress.py)
        "MOE_TOOLS_EXTERNAL": "timezone_convert,number_words",
    }
    with Fleet(env) as fleet:
        yield fleet


@pytest.fixture(scope="package")
def api_key(infra: dict[str, str]) -> str:
    return asyncio.run(_create_key(infra["postgres"], "user", "tenant-e2e"))


@pytest.fixture(scope="package")
def base_url(fleet: Fleet) -> str:
    return f"{fleet['gateway'].url}/v1"


@pytest.fixture(scope="package")
def control_url(fleet: Fleet) -> str:
    """The control plane's API (feedback, documents, admin, usage)."""
    return f"{fleet['control-plane'].url}/v1"
