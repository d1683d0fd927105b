"""Kafka: the fleet's topics (partitions and their non-default configuration) and codex-lineage's consumer-group
offsets at the time of the backup. A restore sets the topics' configuration again (creating a missing topic) and
moves codex-lineage's offsets back to the backup's, so the stretch since the backup is read again (the audit
store appends a record once per topic, partition and offset). The topics' messages stay in Kafka: they are the
primary record and are not copied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.admin import (
    DescribeGroupsRequest,
    DescribeGroupsRequest_v0,
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
)

from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.settings import FleetSettings

FILE = "kafka.json"
RECORDER = "codex-lineage"
DYNAMIC = 1  # DescribeConfigs' config_source DYNAMIC_TOPIC_CONFIG: set on the topic, not a broker default


def _settings(namespace: str, service: str = "moe-backup") -> FleetSettings:
    return FleetSettings(service_name=service, topic_namespace=namespace)


def recorder_group(namespace: str) -> str:
    return _settings(namespace, RECORDER).group_id()


async def _admin(namespace: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(**client_kwargs(_settings(namespace)), client_id="moe-backup")
    await admin.start()
    return admin


async def _topics(admin: AIOKafkaAdminClient, namespace: str) -> dict[str, dict[str, Any]]:
    names = sorted(t for t in await admin.list_topics() if t.startswith(f"{namespace}."))
    partitions = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)} if names else {}
    topics: dict[str, dict[str, Any]] = {n: {"partitions": partitions.get(n, 1), "configs": {}} for n in names}
    if names:
        for response in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names]):
            for resource in response.resources:
                topics[resource[3]]["configs"] = {e[0]: e[1] for e in resource[4] if len(e) > 3 and e[3] == DYNAMIC}
    return topics


async def dump(namespace: str, folder: Path) -> dict[str, Any]:
    admin = await _admin(namespace)
    try:
        topics = await _topics(admin, namespace)
        group = recorder_group(namespace)
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    state = {"namespace": namespace, "topics": topics, "recorder_group": group,
             "recorder_offsets": [{"topic": tp.topic, "partition": tp.partition, "offset": meta.offset}
                                  for tp, meta in sorted(offsets.items()) if meta.offset >= 0]}
    (folder / FILE).write_text(json.dumps(state, indent=1, sort_keys=True))
    return {"file": FILE, "topics": len(topics), "recorder_partitions": len(state["recorder_offsets"])}


class _DescribeGroups(DescribeGroupsRequest):
    """DescribeGroups up to v2: aiokafka 0.14 decodes a v3 answer (Kafka 4 offers v3+) with the v2 schema and fails
    ('Buffer underrun decoding string'); v2 holds what is asked here (the members)."""


_DescribeGroups._CLASSES = (DescribeGroupsRequest_v0, DescribeGroupsRequest_v1, DescribeGroupsRequest_v2)


async def active_groups(namespace: str) -> dict[str, int]:
    """The fleet's consumer groups (of this namespace) that have members now: {group: members}."""
    suffix = "" if namespace == "moe" else f".{namespace}"
    admin = await _admin(namespace)
    try:
        groups = [g[0] for g in await admin.list_consumer_groups()
                  if (g[0].endswith(suffix) if suffix else "." not in g[0])]
        active: dict[str, int] = {}
        for name in groups:
            node = await admin.find_coordinator(name)
            response = await admin._send_request(_DescribeGroups([name]), node)
            for group in response.groups:
                if group[5]:  # members
                    active[group[1]] = len(group[5])
    finally:
        await admin.close()
    return active


async def _configure(admin: AIOKafkaAdminClient, topics: dict[str, dict[str, Any]]) -> int:
    existing = set(await admin.list_topics())
    missing = [NewTopic(n, t["partitions"], 1, topic_configs=t["configs"]) for n, t in topics.items()
               if n not in existing]
    if missing:
        await admin.create_topics(missing)
    changed = [ConfigResource(ConfigResourceType.TOPIC, n, t["configs"]) for n, t in topics.items()
               if t["configs"] and n in existing]
    if changed:
        await admin.alter_configs(changed)
    return len(missing)


async def _rewind(namespace: str, group: str, offsets: list[dict[str, Any]]) -> None:
    """Commit the backup's offsets for codex-lineage's group (no member: a manually assigned commit)."""
    consumer = AIOKafkaConsumer(**client_kwargs(_settings(namespace)), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        wanted = {TopicPartition(o["topic"], o["partition"]): o["offset"] for o in offsets}
        consumer.assign(list(wanted))
        await consumer.commit(wanted)
    finally:
        await consumer.stop()


async def restore(folder: Path) -> dict[str, Any]:
    state = json.loads((folder / FILE).read_text())
    admin = await _admin(state["namespace"])
    try:
        created = await _configure(admin, state["topics"])
    finally:
        await admin.close()
    if state["recorder_offsets"]:
        await _rewind(state["namespace"], state["recorder_group"], state["recorder_offsets"])
    return {"topics_created": created, "recorder_offsets": len(state["recorder_offsets"])}
