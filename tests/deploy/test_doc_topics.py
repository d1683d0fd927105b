"""docs/topics.md's prose and the gateway's topics in docs/architecture.md against the code: who publishes and
who consumes each topic (the stage and service declarations, which tests/deploy/test_stage_registry.py holds
against the topics each package's code names). docs/topics.md's table is generated from the same declarations
(moe_tools.docgen.topic_doc; tests/deploy/test_doc_sections.py fails on drift)."""

from __future__ import annotations

import ast
import re

import pytest

import moe_core.stage.registry as stage_registry
from moe_core.contracts import Topics
from moe_core.contracts.topics import TOPIC_MESSAGES
from moe_core.stage.spec import EVERY_TOPIC
from tests.deploy.doc_support import REPO, leading_names, read

pytestmark = pytest.mark.unit

NAMES = [s.name for s in stage_registry.FLEET]
TOPICS = Topics.for_namespace("moe")


def _topics_in(call: ast.Call) -> set[str]:
    args = [*call.args, *(k.value for k in call.keywords if k.arg == "topic")]
    return {node.attr for arg in args for node in ast.walk(arg) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute) and node.value.attr == "topics"}


def called_topics(service: str) -> tuple[set[str], set[str]]:
    """(published, consumed) as a service's calls name them: publish/publish_all(…topics.X…), subscribe(…)."""
    published, consumed = set(), set()
    for path in (REPO / "services" / service / service.replace("-", "_")).rglob("*.py"):
        for call in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)):
            name = call.func.attr if isinstance(call.func, ast.Attribute) else ""
            if name in ("publish", "publish_all"):
                published |= _topics_in(call)
            elif name == "subscribe":
                consumed |= _topics_in(call)
    return published, consumed


def declared() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """topic field -> the services that publish it, and those that consume it."""
    producers: dict[str, set[str]] = {t: set() for t in TOPIC_MESSAGES}
    consumers: dict[str, set[str]] = {t: set() for t in TOPIC_MESSAGES}
    for entry in stage_registry.FLEET:
        stage = entry.declaration()
        if stage is None:
            continue
        for topic in stage.publishes:
            producers[topic].add(entry.name)
        for consumes in stage.all_consumed():
            if consumes.topic != EVERY_TOPIC:  # the recorder reads every topic; topics.md says so once
                consumers[consumes.topic].add(entry.name)
    return producers, consumers


def gateway_topics() -> tuple[set[str], set[str]]:
    """(published, consumed) as the gateway declares them (gateway.declaration: its app subscribes from it)."""
    gateway = stage_registry.service("gateway").declaration()
    assert gateway is not None
    return set(gateway.publishes), {c.topic for c in gateway.all_consumed()}


def test_the_gateway_calls_are_found() -> None:
    published, consumed = gateway_topics()
    assert {"requests", "answers", "cancel"} <= published and consumed == {"answers", "progress", "deltas"}
    assert called_topics("gateway")[0] <= published  # every topic its code publishes to is declared


def test_the_architecture_names_the_gateway_topics() -> None:
    text = " ".join(read("docs/architecture.md").split())
    sentence = re.search(r"The gateway reads (.+?) \*\*without a consumer group\*\*.*? and publishes (.+?)\.", text)
    assert sentence, "docs/architecture.md no longer says which topics the gateway reads and publishes"
    reads, publishes = (re.findall(r"`([a-z.-]+)`", re.sub(r"\([^)]*\)", "", part)) for part in sentence.groups())
    published, consumed = gateway_topics()
    assert sorted(reads) == sorted(consumed) and sorted(publishes) == sorted(published)
    row = re.search(r"\| gateway publishes (.+?); Postgres holds", re.sub(r"^.*?\| gateway publishes `feedback`[^|]*\|",
                                                                         "| gateway publishes", text))
    assert row, "docs/architecture.md's sketch table no longer lists what the gateway publishes"
    assert sorted(re.findall(r"`([a-z.-]+)`", re.sub(r"\([^)]*\)", "", row.group(1)))) == sorted(published)


def test_message_headings_name_only_services_that_publish_or_consume_it() -> None:
    """`### `Plan` — planner → merger (`moe.plans.v1`)`: a heading may name the main flow only, never a
    service that does not publish (left) or consume (right) the message's topic."""
    producers, consumers = declared()
    field_of = {getattr(TOPICS, f): f for f in TOPIC_MESSAGES}
    headings = re.findall(r"^### `(\w+)` — (.+?) → (.+?)$", read("docs/topics.md"), re.M)
    assert len(headings) == len(TOPIC_MESSAGES)
    for message, left, right in headings:
        address = re.search(r"`(moe\.[a-z.-]+\.v1)`", right)
        assert address, message
        topic = field_of[address.group(1)]
        assert TOPIC_MESSAGES[topic] == message
        assert set(leading_names(left, NAMES)) <= producers[topic], f"{message}: {left}"
        assert set(leading_names(right, NAMES)) <= consumers[topic], f"{message}: {right}"


def test_the_progress_stages_and_the_cancel_subscribers_are_the_declared_ones() -> None:
    producers, consumers = declared()
    text = " ".join(read("docs/topics.md").split())
    stages = re.search(r"\| `stage` \| str \| (.+?) \|", text)
    assert stages and sorted(re.findall(r"`([a-z-]+)`", stages.group(1))) == sorted(producers["progress"])
    cancel = re.search(r"`libs/moe_core/runtime/cancellation.py`\): (.+?) subscribe without a group", text)
    assert cancel and sorted(leading_names(cancel.group(1), NAMES)) == sorted(consumers["cancel"] - {"gateway"})


def test_the_kafka_headers_table_lists_every_header_the_bus_sets() -> None:
    """docs/topics.md "Kafka headers": one row per header constant of moe_core.contracts.headers (the dead-letter
    reason is named below the table), none that the code does not set."""
    from moe_core.contracts import headers
    section = read("docs/topics.md").split("## Kafka headers", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([\w-]+)`", section, re.M))
    rows |= {name for pair in re.findall(r"^\| `([\w-]+)`, `([\w-]+)`", section, re.M) for name in pair}
    constants = {v for k, v in vars(headers).items() if k.isupper() and isinstance(v, str)}
    assert rows == constants - {headers.DLQ_REASON}
    assert f"`{headers.DLQ_REASON}`" in section
