"""A test namespace's principals torn down, then the broker restarted: every other principal (the admin, a
service still running) still authenticates, and a torn-down one is refused. Kafka 4.1.1 loses every SCRAM
credential at restart once a credential was *deleted* (moe_core.kafka_admin.KafkaAdmin.revoke_scram), which is
why tear_down revokes instead. On a private broker (tests/support/chaos_infra.py), never the shared one."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from moe_core.kafka_clients import client_kwargs
from moe_core.kafka_setup import set_up, tear_down
from moe_core.settings import FleetSettings
from tests.support.chaos_infra import PrivateInfra

pytestmark = pytest.mark.infra


async def _authenticates(settings: FleetSettings) -> bool:
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=10_000)
    try:
        await admin.start()
        return True
    except KafkaConnectionError:
        return False
    finally:
        await admin.close()


def _as(settings: FleetSettings, user: str, password: str) -> FleetSettings:
    return settings.model_copy(update={"kafka_username": user, "kafka_password": SecretStr(password)})


def test_torn_down_principals_leave_every_other_credential_working_across_a_restart() -> None:
    infra = PrivateInfra(("kafka",))
    try:
        infra.up()
        eps = infra.endpoints()
        admin = FleetSettings(kafka_bootstrap=eps["kafka"], kafka_security_protocol="SASL_PLAINTEXT",
                              kafka_sasl_mechanism="SCRAM-SHA-512", kafka_username=eps["kafka-admin-user"],
                              kafka_password=SecretStr(eps["kafka-admin-password"]))
        kept, gone = admin.model_copy(update={"topic_namespace": "kept"}), admin.model_copy(
            update={"topic_namespace": "gone"})
        asyncio.run(set_up(kept, {"planner.kept": "kept-secret-1"}))
        asyncio.run(set_up(gone, {"planner.gone": "gone-secret-1"}))
        asyncio.run(tear_down(gone))
        assert not asyncio.run(_authenticates(_as(admin, "planner.gone", "gone-secret-1")))

        infra.stop("kafka")
        infra.up("kafka")  # fleetctl's readiness check connects as the admin: it fails if the admin was lost
        assert asyncio.run(_authenticates(admin))
        assert asyncio.run(_authenticates(_as(admin, "planner.kept", "kept-secret-1")))
        assert not asyncio.run(_authenticates(_as(admin, "planner.gone", "gone-secret-1")))
    finally:
        infra.close()
