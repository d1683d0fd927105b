"""Producer signatures (issue 47, item 1): what the signature covers and every way a check refuses a message; the
producers' key list generated from the stage declarations; a stage subscription declared `signed` (graph-ingest's
ingest) dead-letters what no declared producer signed and acts only on the rest (on the in-memory broker)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

import moe_core.stage.registry as stage_registry
from moe_core.contracts import Answer, DeadLetter, ToolTask, Topics, deadline_in, headers
from moe_core.runtime.bus import Bus
from moe_core.runtime.producer_signing import ProducerRefused, ProducerVerifier
from moe_core.runtime.settings import FleetSettings
from moe_core.stage import producers
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import Consumes, Stage

pytestmark = pytest.mark.unit
TOPICS = Topics.for_namespace("moe")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return producers.generate(tmp_path_factory.mktemp("producer-keys")).parent


def _signed(keys: Path, service: str, topic: str, value: bytes = b'{"a": 1}', key: bytes = b"r1",
            message_type: str = "AuditEvent") -> dict[str, str]:
    hdrs = {headers.PRODUCER: service, headers.MESSAGE_TYPE: message_type}
    return {**hdrs, **producers.signer(keys, service).headers(topic, key, value, message_type)}


def _refusal(verifier: ProducerVerifier, topic: str, hdrs: dict[str, Any], value: bytes = b'{"a": 1}',
             key: bytes = b"r1") -> str:
    with pytest.raises(ProducerRefused) as refused:
        verifier.check(topic, key, value, hdrs)
    return refused.value.reason


def test_a_declared_producers_signature_names_it_and_anything_else_is_refused(keys: Path) -> None:
    verifier = ProducerVerifier.from_file(str(keys / producers.LIST), TOPICS)
    audit = TOPICS.audit
    assert verifier.check(audit, b"r1", b'{"a": 1}', _signed(keys, "control-plane", audit)) == "control-plane"
    assert verifier.check(TOPICS.deadletter, b"r1", b'{"a": 1}',
                          _signed(keys, "expert-worker", TOPICS.deadletter)) == "expert-worker"  # any consumer's
    assert _refusal(verifier, audit, {headers.PRODUCER: "control-plane"}) == "unsigned"
    assert _refusal(verifier, audit, {}) == "unsigned"
    good = _signed(keys, "control-plane", audit)
    assert _refusal(verifier, audit, good, value=b'{"a": 2}') == "bad_signature"  # the bytes changed
    assert _refusal(verifier, audit, good, key=b"r2") == "bad_signature"  # another record key
    assert _refusal(verifier, audit, {**good, headers.MESSAGE_TYPE: "Answer"}) == "bad_signature"  # another type
    assert _refusal(verifier, TOPICS.usage, _signed(keys, "control-plane", audit)) == "bad_signature"  # another topic
    forged = {**_signed(keys, "planner", audit), headers.SIGNER: "control-plane", headers.PRODUCER: "control-plane"}
    assert _refusal(verifier, audit, forged) == "bad_signature"  # the planner's key, claiming the control plane's
    assert _refusal(verifier, audit, {**_signed(keys, "planner", audit), headers.PRODUCER: "control-plane"}) == \
        "producer_mismatch"
    # expert-worker may write results, never audit events (its declaration)
    assert _refusal(verifier, audit, _signed(keys, "expert-worker", audit)) == "not_a_producer"
    assert _refusal(verifier, audit, {**good, headers.SIGNER: "stranger"}) == "unknown_signer"
    assert _refusal(verifier, audit, {**good, headers.SIGNATURE: "not base64!"}) == "bad_signature"


def test_the_key_list_is_generated_from_the_declarations_and_keeps_its_keys(tmp_path: Path) -> None:
    listing = producers.generate(tmp_path)
    doc = json.loads(listing.read_text())
    assert doc["format"] == "moe-producer-keys/1"
    assert sorted(doc["producers"]) == sorted(stage_registry.names())
    for entry in stage_registry.FLEET:
        declared = entry.declaration()
        assert declared is not None
        assert doc["producers"][entry.name]["publishes"] == [*dict.fromkeys((*declared.publishes, "deadletter"))]
        assert stat.S_IMODE(producers.key_file(tmp_path, entry.name).stat().st_mode) == 0o600
    planner = producers.key_file(tmp_path, "planner").read_bytes()
    producers.key_file(tmp_path, "critic").unlink()  # a key replaced: made anew, the others kept
    again = json.loads(producers.generate(tmp_path).read_text())
    assert producers.key_file(tmp_path, "planner").read_bytes() == planner
    assert again["producers"]["planner"] == doc["producers"]["planner"]
    assert again["producers"]["critic"]["key"] != doc["producers"]["critic"]["key"]


class _Settings(FleetSettings):
    service_name: str = "checker"


class _Checker:
    def __init__(self, res: Any) -> None:
        self.seen: list[str] = []

    async def handle(self, task: ToolTask) -> None:
        self.seen.append(task.response_id)


CHECKER = Stage(name="checker", settings=_Settings, build=_Checker, summary="tool tasks, producers checked",
                consumes=(Consumes("tasks_mcp", ToolTask, "handle", signed=True),), publishes=(), needs=())


async def test_a_signed_subscription_acts_only_on_what_a_declared_producer_signed(keys: Path, namespace: str) -> None:
    settings = _Settings(topic_namespace=namespace, producer_keys=str(keys / producers.LIST),
                         producer_signing_key=str(producers.key_file(keys, "mcp")))
    bus = Bus(settings)
    app = create_stage_app(CHECKER, settings, bus=bus, manage_broker=False)
    letters: list[DeadLetter] = []
    bus.broker.subscriber(bus.topics.deadletter)(lambda m: letters.append(DeadLetter.model_validate(m)))
    topic = bus.topics.tasks_mcp

    def task(rid: str) -> bytes:
        return ToolTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id="t1",
                        tool="echo").model_dump_json().encode()

    unsigned, planner, merger = task("r-unsigned"), task("r-planner"), task("r-merger")
    async with TestKafkaBroker(bus.broker) as broker:
        await broker.publish(unsigned, topic, key=b"r-unsigned", headers={headers.PRODUCER: "planner"})
        await broker.publish(planner, topic, key=b"r-planner",
                             headers=_signed(keys, "planner", topic, planner, b"r-planner", "ToolTask"))
        await broker.publish(merger, topic, key=b"r-merger",  # merger does not publish tool tasks
                             headers=_signed(keys, "merger", topic, merger, b"r-merger", "ToolTask"))
    assert app.state.checker.seen == ["r-planner"]
    reasons = {d.response_id: (d.error_type, d.reason) for d in letters}
    assert reasons["r-unsigned"][0] == reasons["r-merger"][0] == "producer_signature"
    assert reasons["r-unsigned"][1].startswith("producer signature refused: unsigned")
    assert "merger, which is not a declared producer" in reasons["r-merger"][1]
    assert set(reasons) == {"r-unsigned", "r-merger"}


async def test_the_edge_takes_only_answers_a_declared_producer_signed(keys: Path, namespace: str) -> None:
    """Bus.subscribe(signed=True), as the gateway reads the answers it waits for (gateway.declaration)."""
    settings = _Settings(topic_namespace=namespace, service_name="gateway", producer_keys=str(keys / producers.LIST))
    bus = Bus(settings)
    delivered: list[str] = []
    letters: list[DeadLetter] = []

    async def deliver(answer: Answer) -> None:
        delivered.append(answer.response_id)

    bus.subscribe(bus.topics.answers, Answer, deliver, group=False)  # unchecked: what it was before
    checked: list[str] = []

    async def deliver_checked(answer: Answer) -> None:
        checked.append(answer.response_id)

    bus.subscribe(bus.topics.answers, Answer, deliver_checked, group=False, signed=True)
    bus.broker.subscriber(bus.topics.deadletter)(lambda m: letters.append(DeadLetter.model_validate(m)))
    topic = bus.topics.answers

    def answer(rid: str) -> bytes:
        return Answer(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                      content="forged?").model_dump_json().encode()

    forged, merger, research = answer("r-forged"), answer("r-merger"), answer("r-research")
    async with TestKafkaBroker(bus.broker) as broker:
        await broker.publish(forged, topic, key=b"r-forged", headers={headers.PRODUCER: "merger"})
        await broker.publish(merger, topic, key=b"r-merger",
                             headers=_signed(keys, "merger", topic, merger, b"r-merger", "Answer"))
        await broker.publish(research, topic, key=b"r-research",  # research may publish results, not answers
                             headers=_signed(keys, "research", topic, research, b"r-research", "Answer"))
    assert delivered == ["r-forged", "r-merger", "r-research"] and checked == ["r-merger"]
    assert {d.response_id: d.error_type for d in letters} == {"r-forged": "producer_signature",
                                                              "r-research": "producer_signature"}


def test_the_consumers_that_show_or_count_a_message_check_its_producer() -> None:
    """The edge shows progress, deltas and answers to clients; the control plane counts usage charges: each of
    these subscriptions is `signed` (Bus.subscribe / the stage consumer dead-letter the rest)."""
    from control_plane.declaration import SERVICE as CONTROL_PLANE
    from gateway.declaration import SERVICE as GATEWAY

    assert {c.topic: c.signed for c in GATEWAY.consumes} == {"answers": True, "progress": True, "deltas": True}
    assert {c.topic: c.signed for c in CONTROL_PLANE.consumes} == {"usage": True}


@pytest.mark.parametrize("topic_kind", ["progress", "deltas"])
async def test_the_edge_shows_only_live_events_a_declared_producer_signed(keys: Path, namespace: str,
                                                                          topic_kind: str) -> None:
    """The edge's progress and delta subscriptions as gateway.app makes them: a forged header, a key of a stage
    that does not publish there, or another key under a declared producer's name never reach the request's
    events; each is dead-lettered (producer_signature) with its reason."""
    from moe_core.contracts import AnswerDelta, Progress

    settings = _Settings(topic_namespace=namespace, service_name="gateway", producer_keys=str(keys / producers.LIST))
    bus = Bus(settings)
    shown: list[str] = []
    letters: list[DeadLetter] = []

    async def deliver(event: Progress | AnswerDelta) -> None:
        shown.append(event.response_id)

    model: type[Progress] | type[AnswerDelta] = Progress if topic_kind == "progress" else AnswerDelta
    bus.subscribe(getattr(bus.topics, topic_kind), model, deliver, group=False, signed=True)
    bus.broker.subscriber(bus.topics.deadletter)(lambda m: letters.append(DeadLetter.model_validate(m)))
    topic, kind = getattr(bus.topics, topic_kind), model.__name__
    producer = "planner" if topic_kind == "progress" else "merger"
    stranger = "graph-rag"  # publishes neither progress nor deltas (its declaration)

    def event(rid: str) -> bytes:
        fields = {"response_id": rid, "tenant_id": "t", "deadline_at": deadline_in(30)}
        made = (Progress(**fields, stage="planner", event="planned", detail="FORGED?") if model is Progress
                else AnswerDelta(**fields, seq=0, content="FORGED?"))
        return made.model_dump_json().encode()

    values = {rid: event(rid) for rid in ("r-header", "r-stranger", "r-borrowed", "r-genuine")}
    borrowed = {**_signed(keys, stranger, topic, values["r-borrowed"], b"r-borrowed", kind),
                headers.SIGNER: producer, headers.PRODUCER: producer}  # another key under the producer's name
    async with TestKafkaBroker(bus.broker) as broker:
        await broker.publish(values["r-header"], topic, key=b"r-header",
                             headers={headers.PRODUCER: producer, headers.MESSAGE_TYPE: kind})
        await broker.publish(values["r-stranger"], topic, key=b"r-stranger",
                             headers=_signed(keys, stranger, topic, values["r-stranger"], b"r-stranger", kind))
        await broker.publish(values["r-borrowed"], topic, key=b"r-borrowed", headers=borrowed)
        await broker.publish(values["r-genuine"], topic, key=b"r-genuine",
                             headers=_signed(keys, producer, topic, values["r-genuine"], b"r-genuine", kind))
    assert shown == ["r-genuine"]
    reasons = {d.response_id: d.reason for d in letters if d.error_type == "producer_signature"}
    assert reasons["r-header"].startswith("producer signature refused: unsigned")
    assert f"{stranger}, which is not a declared producer of {topic}" in reasons["r-stranger"]
    assert reasons["r-borrowed"].startswith(f"producer signature refused: the signature is not {producer}'s")
    assert set(reasons) == {"r-header", "r-stranger", "r-borrowed"}
