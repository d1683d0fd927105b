"""Where the compliance checks read their evidence, live: the broker's topic configs, the audit store (chains,
checkpoints, the recorded audit events), the fleet's key table, Postgres' own catalogs, files on disk and, when
configured, Prometheus. One Sources object per evaluation: what it reads once is kept for the other rules."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from codex_lineage.settings import LineageSettings
from moe_core.audit.store import AuditStore
from moe_core.contracts.topics import Topics
from moe_core.policy.classes import ClassBook
from moe_core.runtime.kafka_clients import client_kwargs

DAY_MS = 86_400_000

AUDIT_EVENTS = """
SELECT recorded_at, tenant_id, response_id, payload::jsonb AS event FROM audit_log
WHERE kind = 'record' AND message_type = 'AuditEvent' AND recorded_at >= now() - make_interval(hours => $1)
  AND payload::jsonb ->> 'action' = ANY($2::text[])
ORDER BY tenant_id, seq
"""


@dataclass
class Sources:
    settings: LineageSettings
    topics: Topics
    store: AuditStore
    keys: Any  # a pool on the fleet's role (reads api_keys)
    drift: Callable[[float], Awaitable[dict[str, Any]]]  # the data-health summary of the last hours
    classes: Callable[[], ClassBook] | None = None  # the data-class file in force
    _retention: dict[str, float | None] | None = field(default=None, init=False)
    _limits: dict[str, dict[str, str]] = field(default_factory=dict, init=False)
    _retention_error: Exception | None = field(default=None, init=False)

    async def retention_days(self) -> dict[str, float | None]:
        """Every fleet topic's retention.ms as the broker reports it, in days (-1: forever; None: the topic does
        not exist or reports no retention)."""
        if self._retention_error is not None:  # one unreachable broker fails every retention rule at once
            raise self._retention_error
        if self._retention is None:
            try:
                self._retention = await self._read_retention()
            except Exception as exc:
                self._retention_error = exc
                raise
        return self._retention

    async def _read_retention(self) -> dict[str, float | None]:
        names = self.topics.all()
        admin = AIOKafkaAdminClient(**client_kwargs(self.settings), client_id="moe-compliance",
                                    request_timeout_ms=10_000)
        await admin.start()
        try:
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
        finally:
            await admin.close()
        found: dict[str, float | None] = {name: None for name in names}
        for response in responses:
            for res in response.resources:  # (error_code, error_message, type, name, [config entries])
                if res[0] != 0:
                    continue
                configs = dict((e[0], e[1]) for e in res[4])
                value = configs.get("retention.ms")
                self._limits[res[3]] = {k: str(configs[k]) for k in ("retention.bytes", "cleanup.policy")
                                        if k in configs}
                if value is not None:
                    ms = int(value)
                    found[res[3]] = -1 if ms < 0 else ms // DAY_MS if ms % DAY_MS == 0 else round(ms / DAY_MS, 2)
        return found

    async def deletion_limits(self) -> dict[str, dict[str, str]]:
        """Per topic its retention.bytes and cleanup.policy (what else may delete a message before its time)."""
        await self.retention_days()
        return self._limits

    def topic(self, kind: str) -> str:
        if not hasattr(self.topics, kind):
            raise ValueError(f"unknown topic kind {kind!r}")
        name: str = getattr(self.topics, kind)
        return name

    async def audit_events(self, actions: list[str], hours: float) -> list[dict[str, Any]]:
        rows = await self.store.pool.fetch(AUDIT_EVENTS, hours, actions)
        return [{"recorded_at": r["recorded_at"], "tenant": r["tenant_id"], "response_id": r["response_id"],
                 **json.loads(r["event"])} for r in rows]

    async def prometheus_rules(self) -> set[str] | None:
        """The alert names a configured Prometheus has loaded (None: none configured)."""
        if not self.settings.compliance_prometheus_url:
            return None
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.get(f"{self.settings.compliance_prometheus_url.rstrip('/')}/api/v1/rules",
                                    params={"type": "alert"})
            resp.raise_for_status()
            groups = resp.json()["data"]["groups"]
        return {rule["name"] for group in groups for rule in group["rules"]}

    def documents(self) -> dict[str, str]:
        raw = self.settings.compliance_documents.strip()
        if not raw:
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("MOE_COMPLIANCE_DOCUMENTS must be a JSON object {document: path}")
        return {str(k): str(v) for k, v in data.items()}
