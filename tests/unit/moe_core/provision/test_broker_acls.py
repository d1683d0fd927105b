"""The broker's ACLs come from the stage declarations (moe_core.provision.broker_acls) and the clients' security
arguments
from one helper (moe_core.runtime.kafka_clients)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

import moe_core.stage.registry as stage_registry
from moe_core.provision import broker_acls
from moe_core.provision.broker_acls import Acl, Grants, service_acls
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.spec import EVERY_TOPIC

pytestmark = pytest.mark.unit


def test_a_stage_may_read_what_it_consumes_and_write_what_it_publishes_and_nothing_else() -> None:
    critic = stage_registry.service("critic").declaration()
    assert critic is not None
    grants = next(g for g in broker_acls.declared_grants() if g.service == "critic")
    acls = set(service_acls(grants))
    reads = {a.name for a in acls if a.resource == "topic" and a.operation == "read"}
    writes = {a.name for a in acls if a.resource == "topic" and a.operation == "write"}
    assert reads == {f"moe.{c.topic}.v1" for c in critic.all_consumed()}
    assert writes == {f"moe.{t}.v1" for t in (*critic.publishes, "deadletter")}
    assert {a for a in acls if a.resource == "group"} == {
        Acl("User:critic", "group", "critic", "literal", "read"),
        Acl("User:critic", "group", "critic", "literal", "describe")}
    assert all(a.principal == "User:critic" and a.pattern == "literal" for a in acls)


def test_another_namespace_has_principals_and_groups_of_its_own() -> None:
    grants = Grants("planner", ("requests",), ("plans",), True)
    acls = service_acls(grants, "t-1")
    assert {a.principal for a in acls} == {"User:planner.t-1"}
    assert {a.name for a in acls} == {"t-1.requests.v1", "t-1.plans.v1", "t-1.deadletter.v1", "planner.t-1"}


def test_a_reader_of_every_topic_reads_the_namespace_prefix_and_no_group_less_reader_gets_a_group() -> None:
    everything = service_acls(Grants("codex-lineage", (EVERY_TOPIC,), (), True), "moe")
    assert Acl("User:codex-lineage", "topic", "moe.", "prefixed", "read") in everything
    gateway = service_acls(Grants("gateway", ("answers",), ("requests",), False))
    assert not [a for a in gateway if a.resource == "group"]


def test_every_service_of_the_fleet_has_a_principal() -> None:
    assert broker_acls.principals() == stage_registry.names()
    assert broker_acls.principals("t-2") == [f"{n}.t-2" for n in stage_registry.names()]


def test_client_kwargs_carry_the_principal_and_a_sasl_protocol_needs_one() -> None:
    settings = FleetSettings(kafka_bootstrap="k:9092", kafka_security_protocol="SASL_PLAINTEXT",
                             kafka_username="planner", kafka_password=SecretStr("pw"))
    kwargs = client_kwargs(settings)
    assert kwargs["bootstrap_servers"] == ["k:9092"]
    assert (kwargs["security_protocol"], kwargs["sasl_mechanism"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("planner", "pw")
    plaintext = FleetSettings(kafka_bootstrap="k:9092", kafka_security_protocol="PLAINTEXT")
    assert client_kwargs(plaintext, bootstrap="other:1") == {"bootstrap_servers": ["other:1"]}
    with pytest.raises(ValidationError, match="MOE_KAFKA_USERNAME"):
        FleetSettings(kafka_security_protocol="SASL_SSL", kafka_username="", kafka_password=SecretStr(""))
