"""Session-wide fixtures: the real local infrastructure (started once), isolated topic namespaces,
and a scripted inference server standing in for model servers."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from fleetlib import api as fleet  # noqa: E402
from fleetlib import config as fleet_config  # noqa: E402
from fleetlib import opa_bundle  # noqa: E402

from tests.support import opa, package_clock, tiers, topic_cleanup  # noqa: E402
from tests.support.namespaces import new_namespace  # noqa: E402
from tests.support.scripted_llm import create_app as scripted_app  # noqa: E402
from tests.support.scripted_llm import start_server_thread  # noqa: E402

opa.tests_share_the_files()  # the shared OPA watches policy/opa for the tests' many fleets (tests.support.opa)

SCRIPTED_MODELS = ["planner-model", "expert-model", "judge-model", "expert-model-b", "fleet-model"]
FLEET_MODEL = "fleet-model"  # served by both scripted servers (inference fleet tests)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> tiers.TierScheduling:
    return tiers.TierScheduling(config, log)  # `make test`: -n 2, a tier to a worker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tiers.check(items)
    tiers.longest_first(items)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    package_clock.logreport(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    package_clock.summary(terminalreporter)


@pytest.fixture(autouse=True)
def _unit_tests_touch_no_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from tiers.guard(request, monkeypatch, {fleet_config.port(name) for name in tiers.STORE_PORTS})


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Delete the topics this session's namespaces created (a local broker would keep thousands)."""
    deleted = topic_cleanup.clean(fleet.endpoints()["kafka"], fleet_config.kafka_admin_env())
    if deleted:
        print(f"\ntopic clean-up: deleted the {deleted} Kafka topics this test session created")


@pytest.fixture(scope="session")
def endpoints() -> dict[str, str]:
    return fleet.endpoints()


@pytest.fixture(scope="session")
def infra(endpoints: dict[str, str]) -> dict[str, str]:
    """Kafka, Redis, Postgres and Open Policy Agent (the control plane's write decisions), started once per
    session if they are not running; the fleet store's tables and each service's role with its grants made (as
    fleetctl does before the services start)."""
    fleet.ensure_up(["kafka", "redis", "postgres", "opa"])
    if opa_bundle.opa_holds_bundle():  # started by `make up` (the operator's default): it refuses the fleets' puts
        pytest.fail("the running OPA is on the signed bundle (started by `make up`); the tests' fleets need it "
                    "watching policy/opa: `make down` (or `.venv/bin/python deploy/local/fleetctl.py down opa`) "
                    "first", pytrace=False)
    fleet.migrate()
    os.environ.update(fleet_config.kafka_admin_env())  # the session's own Kafka clients: the broker's admin
    return {**endpoints, **fleet.endpoints()}


@pytest.fixture
def namespace() -> str:
    """A fresh topic namespace per test: tests never see each other's (or production's) messages."""
    return new_namespace("t")


@pytest.fixture
async def redis(infra: dict[str, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra["redis"], decode_responses=True)
    yield client
    await client.aclose()


class Scripted:
    """Handle on a running scripted inference server."""

    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.url = url
        self.state = app.state.scripted
        self.models = list(SCRIPTED_MODELS)

    def script(self, rules: list[dict[str, Any]], default_reply: str = "scripted default reply") -> None:
        self.state.set_script({"models": self.models, "rules": rules, "default_reply": default_reply})
        self.state.clear_calls()

    def calls(self, model: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.state.get_calls() if model is None or c["model"] == model]


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[Scripted]:
    app = scripted_app({"models": SCRIPTED_MODELS, "rules": []})
    url, stop = start_server_thread(app=app)
    yield Scripted(app, url)
    stop()


@pytest.fixture(scope="session")
def scripted_server_b() -> Iterator[Scripted]:
    """A second inference server ("scripted-b"), serving only FLEET_MODEL: fleet failover tests."""
    app = scripted_app({"models": [FLEET_MODEL], "rules": []})
    url, stop = start_server_thread(app=app)
    handle = Scripted(app, url)
    handle.models = [FLEET_MODEL]
    yield handle
    stop()


@pytest.fixture
def scripted(scripted_server: Scripted) -> Scripted:
    scripted_server.script([])
    scripted_server.state.up()
    return scripted_server


def scripted_env(url: str, url_b: str | None = None) -> dict[str, str]:
    """Inference configuration pointing every role at the scripted server.

    With url_b, a second server "scripted-b" comes first in the list, serving only FLEET_MODEL (the
    `vision` and `translation` experts' model, also served by "scripted"): the fleet prefers it until it fails.
    Only "scripted" declares FLEET_MODEL as taking images: a task with images goes there."""
    import json

    # images go to FLEET_MODEL here (moe_core.llm.input_limits.images); a sovereign cloud: personal data may reach
    # it, confidential data may not (policy/opa/egress.rego; "scripted-b" says nothing: only public and internal)
    servers = [{"name": "scripted", "url": url, "models": SCRIPTED_MODELS, "max_retries": 0, "timeout_s": 60,
                "vision_models": [FLEET_MODEL], "region": "local", "sovereignty": "sovereign_cloud"}]
    if url_b:
        servers.insert(0, {"name": "scripted-b", "url": url_b, "models": [FLEET_MODEL], "max_retries": 0,
                           "timeout_s": 60})
    return {
        "INFERENCE_SERVERS": json.dumps(servers),
        "MODEL_ASSIGNMENTS": json.dumps({"planner": ["planner-model"], "judge": ["judge-model"],
                                         "default": ["expert-model"]}),
        # data_analyst: two models in order (feedback scoring tests); vision (images) and translation (text: the
        # failover tests) a floating fleet model
        "EXPERT_TEMPLATES": json.dumps({"general": ["expert-model"],
                                        "data_analyst": ["expert-model-b", "expert-model"],
                                        "vision": [FLEET_MODEL], "translation": [FLEET_MODEL]}),
    }
