"""The local broker's TLS listener (fleetlib.kafka_tls, issue 25 item 4): the same principals and ACLs over
SASL_SSL, the broker's certificate verified against the machine's own CA; a client that does not trust that CA,
or that brings no SASL identity, or that speaks plaintext to it, is refused."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError

from moe_core.contracts import Topics
from moe_core.runtime.settings import FleetSettings
from tests.broker.moe_core.provision.test_broker_acls import _send
from tests.support.broker_principals import Principals, settings_of

pytestmark = pytest.mark.infra


@pytest.fixture
def critic(infra: dict[str, str], namespace: str) -> Iterator[FleetSettings]:
    """The critic's own principal (its generated ACLs), connecting to the TLS listener with the local CA."""
    import os

    made = Principals({**os.environ, "MOE_TOPIC_NAMESPACE": namespace}, ["critic"])
    made.set_up()
    env = {**made.env("critic"), "MOE_TOPIC_NAMESPACE": namespace}
    yield settings_of(env).model_copy(update={
        "service_name": "critic", "kafka_bootstrap": infra["kafka-tls"], "kafka_security_protocol": "SASL_SSL",
        "kafka_ca_file": infra["kafka-ca-file"]})
    made.tear_down()


async def test_a_principal_works_over_tls_within_its_acls(critic: FleetSettings, namespace: str) -> None:
    topics = Topics.for_namespace(namespace)
    await _send(critic, topics.answers)  # the critic publishes answers
    with pytest.raises(TopicAuthorizationFailedError):
        await _send(critic, topics.requests)  # not the critic's to write, over TLS as over plaintext


async def test_a_client_that_does_not_trust_the_local_ca_is_refused(critic: FleetSettings, namespace: str) -> None:
    untrusting = critic.model_copy(update={"kafka_ca_file": ""})  # the system's CAs only
    with pytest.raises(KafkaError):
        await _send(untrusting, Topics.for_namespace(namespace).answers)


async def test_no_identity_or_no_tls_on_the_tls_listener_is_refused(infra: dict[str, str]) -> None:
    context = ssl.create_default_context(cafile=infra["kafka-ca-file"])
    for kwargs in ({"security_protocol": "SSL", "ssl_context": context},  # TLS, but no SASL identity
                   {}):  # plaintext to the TLS port
        producer = AIOKafkaProducer(bootstrap_servers=infra["kafka-tls"], request_timeout_ms=5_000, **kwargs)
        with pytest.raises(KafkaConnectionError):
            await producer.start()
        await producer.stop()
