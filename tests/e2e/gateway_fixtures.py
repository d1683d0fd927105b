"""A gateway alone on the real broker (own topic namespace), driven by a BusDriver playing the backend, and the
official openai and anthropic SDKs as its clients; a control plane beside it when a test asks for one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anthropic
import openai
import pytest

from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess
from tests.support.lone_service import driving, lone_control_plane, lone_gateway

KEEPALIVE_S = 0.5
WEBUI_KEY = "e2e-open-webui"
PROFILES_ENV = json.dumps([  # the lone gateway's (tests/e2e/moe_core/llm/test_client_profiles.py)
    {"name": "claude-code", "user_agents": ["claude-cli/*"], "mode": "moe-orchestrator-agent-orchestrated",
     "tool_max_tokens": 4096},
    {"name": "open-webui", "keys": [WEBUI_KEY], "max_tokens": 2048, "reasoning_format": "think"},
])


@pytest.fixture(scope="package")
def bare_gateway(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    with lone_gateway(infra, "gw", MOE_KEEPALIVE_S=str(KEEPALIVE_S), MOE_CLIENT_PROFILES=PROFILES_ENV) as gateway:
        yield gateway


@pytest.fixture(scope="package")
def bare_control_plane(bare_gateway: ServiceProcess) -> Iterator[ServiceProcess]:
    """The control plane beside the lone gateway (its namespace and stores)."""
    with lone_control_plane(bare_gateway) as control_plane:
        yield control_plane


@pytest.fixture(scope="package")
async def driver(bare_gateway: ServiceProcess, infra: dict[str, str]) -> AsyncIterator[BusDriver]:
    async with driving(bare_gateway, infra["kafka"]) as bus:
        yield bus


@pytest.fixture
def gw(bare_gateway: ServiceProcess, api_key: str) -> openai.AsyncOpenAI:
    """The openai SDK on the lone gateway."""
    return openai.AsyncOpenAI(base_url=f"{bare_gateway.url}/v1", api_key=api_key, max_retries=0, timeout=30)


@pytest.fixture
def gw_anthropic(bare_gateway: ServiceProcess, api_key: str) -> anthropic.AsyncAnthropic:
    """The anthropic SDK on the lone gateway."""
    return anthropic.AsyncAnthropic(base_url=bare_gateway.url, api_key=api_key, max_retries=0, timeout=30)
