"""A test fleet's own Kafka principals: `<service>.<namespace>` with fresh passwords, their SCRAM credentials and
ACLs (generated from the declarations, moe_core.provision.kafka_setup) made by the admin before the services start and
removed when they stop. So every test fleet runs with the ACLs production has, and never touches the fleet's
own principals' credentials."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from aiokafka.errors import KafkaError

from moe_core.provision.broker_acls import principal_name
from moe_core.provision.kafka_setup import set_up, tear_down
from moe_core.runtime.settings import FleetSettings

TOPIC_SETTINGS = ("MOE_TOPIC_NAMESPACE", "MOE_TOPIC_PARTITIONS", "MOE_TOPIC_REPLICATION_FACTOR")


def settings_of(env: dict[str, str]) -> FleetSettings:
    """The Kafka client settings an environment names (MOE_KAFKA_*, the topics' namespace, partitions and replicas)."""
    fields: dict[str, Any] = {k.removeprefix("MOE_").lower(): v for k, v in env.items()
                              if k.startswith("MOE_KAFKA_") or k in TOPIC_SETTINGS}  # validated as settings
    return FleetSettings(**fields)


class Principals:
    """The principals of one namespace's services; none when the broker in `env` has no SASL."""

    def __init__(self, admin_env: dict[str, str], services: list[str], own: bool = True) -> None:
        self.admin = settings_of(admin_env)
        self.enabled = own and self.admin.kafka_security_protocol.startswith("SASL_")
        namespace = self.admin.topic_namespace
        self.passwords = {name: secrets.token_urlsafe(18) for name in services} if self.enabled else {}
        self.names = {name: principal_name(name, namespace) for name in services}

    def env(self, service: str) -> dict[str, str]:
        """The service's own identity (its topics are made by the admin)."""
        if not self.enabled:
            return {}
        return {"MOE_KAFKA_USERNAME": self.names[service], "MOE_KAFKA_PASSWORD": self.passwords[service],
                "MOE_KAFKA_CREATE_TOPICS": "false"}

    def set_up(self) -> None:
        """Topics, credentials and ACLs of the namespace (as the admin)."""
        if self.enabled:
            asyncio.run(set_up(self.admin, {self.names[s]: p for s, p in self.passwords.items()}))

    def tear_down(self) -> None:
        """Best effort: a broker a chaos test left stopped keeps them (its data directory is thrown away)."""
        if self.enabled:
            try:
                asyncio.run(tear_down(self.admin))
            except KafkaError as exc:
                print(f"kafka principals of {self.admin.topic_namespace} not removed: {type(exc).__name__}: {exc}")
