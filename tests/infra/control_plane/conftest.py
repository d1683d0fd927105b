"""The control plane's infra tests: a pool on the local Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture
async def pool(infra: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(infra["postgres"], min_size=1, max_size=4)
    assert created is not None
    try:
        yield created
    finally:
        await created.close()
