"""Stages on FastStream's in-memory broker (TestKafkaBroker) with their model scripted: the scripted inference
server as an ASGI app in this process (no socket), what a stage publishes collected per topic."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from starlette.applications import Starlette

from moe_core.llm.inference import InferenceClient, InferenceConfig
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings
from planner.app import create_app as planner_app
from planner.settings import PlannerSettings
from tests.support.scripted_llm import create_app as scripted_app

M = TypeVar("M", bound=BaseModel)


def scripted_servers(*models: str) -> str:
    """MOE_INFERENCE_SERVERS: one server "s" serving `models` (reached in-process by scripted_inference)."""
    return json.dumps([{"name": "s", "url": "http://s", "models": list(models)}])


def scripted_inference(settings: FleetSettings, llm: Starlette) -> InferenceClient:
    """The stage's inference client, its requests answered by the scripted server app `llm` in this process."""
    return InferenceClient(InferenceConfig.from_settings(settings),
                           httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)))


def collect(bus: Bus, topic: str, model: type[M]) -> list[M]:
    """What is published on `topic` from now on, as `model`s (call it before the in-memory broker starts)."""
    found: list[M] = []
    bus.broker.subscriber(topic)(lambda m: found.append(model.model_validate(m)))
    return found


def planner_on(namespace: str, redis: Any, rules: Sequence[dict[str, Any]], **settings: Any) -> tuple[Starlette, Bus]:
    """The planner with its model ("p") scripted by `rules`: the scripted app and the planner's bus. About the
    planner model's plan: the Chroma shortcuts (semantic cache, router), the trivial route and the graph task
    augmenter are off unless `settings` says otherwise."""
    llm = scripted_app({"models": ["p"], "rules": list(rules)})
    config = PlannerSettings(**{"topic_namespace": namespace, "semantic_cache_enabled": False,
                                "router_enabled": False, "planner_skip_trivial": False, "planner_graph_tasks": False,
                                "inference_servers": scripted_servers("p"), **settings})
    bus = Bus(config)
    planner_app(config, bus=bus, inference=scripted_inference(config, llm), redis=redis, manage_broker=False)
    return llm, bus
