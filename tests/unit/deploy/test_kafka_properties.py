"""The local brokers' server.properties (deploy/local/fleetlib): the one-node broker and every node of the
three-broker cluster authenticate and authorize alike (fleetlib.kafka.security, written once): SCRAM-SHA-512 on
the client listener, PLAIN between controllers, nothing allowed without an ACL, admin and controller the super
users. The one-node broker alone offers PLAIN to the admin while it adopts a directory formatted before SASL."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleetlib import kafka, kafka_cluster

pytestmark = pytest.mark.unit
SHARED = ("sasl.", "listener.name.broker.", "listener.name.controller.", "authorizer.", "super.users",
          "allow.everyone")


def _parsed(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _security(props: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in props.items() if k.startswith(SHARED)}


def test_the_broker_and_every_cluster_node_authenticate_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka.passwords, "generate", lambda name: f"pw-{name}")
    single, adopting = _parsed(kafka._properties(False)), _parsed(kafka._properties(True))
    cluster = kafka_cluster.nodes(Path("/tmp/cluster"), [(1, 2), (3, 4), (5, 6)])
    nodes = [_parsed(kafka_cluster.properties(n, cluster, "pw-kafka-admin", "pw-kafka-controller")) for n in cluster]
    plain_admin = "listener.name.broker.plain.sasl.jaas.config"
    for node in nodes:
        assert _security(node) == {k: v for k, v in _security(single).items() if k != plain_admin}
    assert single["sasl.enabled.mechanisms"] == "SCRAM-SHA-512" and single["allow.everyone.if.no.acl.found"] == "false"
    assert single["super.users"] == "User:admin;User:controller"
    assert 'username="controller" password="pw-kafka-controller" user_controller="pw-kafka-controller";' in \
        single["listener.name.controller.plain.sasl.jaas.config"]
    assert (adopting["sasl.enabled.mechanisms"], adopting["sasl.mechanism.inter.broker.protocol"]) == \
        ("SCRAM-SHA-512,PLAIN", "PLAIN")
    assert 'user_admin="pw-kafka-admin";' in adopting[plain_admin]
