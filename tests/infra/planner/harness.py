"""The set-up the planner's CPU drivers share (planner_profile, planner_cpu): the planner app on the real Kafka,
Redis, Chroma and OPA (`make up`'s) in a fresh topic namespace, its planner model a scripted server answering
`reply`, and a producer to send as the fleet would. Not a test."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "deploy" / "local"))

import fleetctl
from fleetlib import config as fleet_config

from moe_core.contracts import Topics
from moe_core.llm.inference import InferenceClient, InferenceConfig
from moe_core.llm.inference.live import LiveOverrides
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.stores import redis_client
from planner.app import Planner, create_app
from planner.settings import PlannerSettings
from tests.support.namespaces import new_namespace
from tests.support.scripted_llm import create_app as scripted_app


@dataclass
class Harness:
    kafka: str  # the broker's bootstrap address
    settings: PlannerSettings
    planner: Planner
    topics: Topics
    producer: AIOKafkaProducer
    llm: Any  # the scripted planner model's app (its state.scripted records the calls)


@asynccontextmanager
async def running_planner(reply: str) -> AsyncIterator[Harness]:
    """The planner app started (its lifespan) with a started producer; at the end its cache collection is dropped."""
    fleetctl.ensure_up(["kafka", "redis", "chroma", "opa"])  # OPA: the egress gate
    os.environ.update(fleet_config.kafka_admin_env())  # as tests/infra/conftest.py: the broker's admin
    infra = fleetctl.endpoints()
    namespace = new_namespace("cpu")
    llm = scripted_app({"models": ["p"], "rules": [{"reply": reply}]})
    settings = PlannerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                               chroma_url=infra["chroma"],
                               inference_servers='[{"name":"s","url":"http://s","models":["p"],"max_retries":0}]')
    overlay = redis_client(infra["redis"])
    inference = InferenceClient(InferenceConfig.from_settings(settings),
                                httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)),
                                live=LiveOverrides(overlay, namespace))
    app = create_app(settings, inference=inference)
    planner: Planner = app.state.planner
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]), linger_ms=0)
    async with app.router.lifespan_context(app):
        await producer.start()
        try:
            yield Harness(infra["kafka"], settings, planner, Topics.for_namespace(namespace), producer, llm)
        finally:
            await producer.stop()
            assert planner.cache is not None and planner.vectors is not None
            await planner.vectors.drop(planner.cache.name)
            await overlay.aclose()
