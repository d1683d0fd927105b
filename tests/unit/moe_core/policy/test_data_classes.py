"""Data classes (policy/data-classes.yaml): the repository's file, the class of catalog entries and tenants, what a
request's lineage reached that its class forbids, and a broken file (refused with its line; on a change, the
previous classes stay in force)."""

from __future__ import annotations

from pathlib import Path

import pytest

from moe_core.llm.templates import REPO
from moe_core.policy.classes import ClassFile, ClassFileError, classify_request, parse

pytestmark = pytest.mark.unit
POLICY = (REPO / "policy" / "data-classes.yaml").read_text()


def _event(inputs: list[tuple[str, str]], server: str | None = None, model: str | None = None) -> dict[str, object]:
    facets = {"moe_model": {"server": server, "model": model}} if model else {}
    return {"inputs": [{"namespace": n, "name": d} for n, d in inputs], "outputs": [],
            "run": {"facets": facets}}


def test_the_repositorys_file_classifies_the_catalog() -> None:
    policy = parse(POLICY, "data-classes.yaml")
    assert policy.of_entry("topic", "moe.requests.v1") == {"class": "personal", "marking": "SCHUTZBEDUERFTIG"}
    assert policy.of_entry("topic", "moe.audit.v1")["class"] == "confidential"
    assert policy.of_entry("table", "public.api_keys")["class"] == "confidential"
    assert policy.of_entry("store", "semantic-cache")["class"] == "personal"
    assert policy.of_entry("job", "planner") == {"class": "internal", "marking": "INTERN"}  # default_class
    assert policy.tenant_marking("acme") == {"class": "internal", "marking": "INTERN", "source": "default_class"}


def test_a_personal_request_that_reached_the_cache_or_another_server_is_flagged() -> None:
    policy = parse(POLICY.replace("tenants: {}", "tenants: {clinic: personal}")
                   .replace('models: ["*"]', 'models: ["local/*"]'), "data-classes.yaml")
    events = [_event([("kafka://k:9092", "moe.requests.v1"), ("chroma://c:8000", "semantic-cache")]),
              _event([("kafka://k:9092", "moe.tasks.expert.v1")], "cloud", "big-model"),
              _event([("neo4j://n:7687", "knowledge-graph")], "local", "small-model")]
    found = classify_request(policy, "clinic", events)
    assert (found["class"], found["source"]) == ("personal", "tenant policy (clinic)")
    assert found["models"] == ["cloud/big-model", "local/small-model"]
    assert found["findings"] == ["dataset chroma://c:8000:semantic-cache is not allowed for personal data",
                                 "model cloud/big-model is not allowed for personal data"]
    assert classify_request(policy, "acme", events)["findings"] == []  # internal: may go anywhere


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nclasses: {a: {}}\ndefault_class: b\n", "default_class: unknown class 'b'"),
    ("version: 1\nclasses: {a: {}}\ndefault_class: a\ntenants: {t: zz}\n", "tenants.t: unknown class 'zz'"),
    ("version: 1\nclasses:\n  a: {}\n   b: [\n", "x.yaml:4: not valid YAML"),
    ("version: 1\nclasses: {a: {}}\ndefault_class: a\nextra: 1\n", "extra: Extra inputs are not permitted"),
])
def test_a_broken_file_is_refused_with_where(text: str, message: str) -> None:
    with pytest.raises(ClassFileError) as caught:
        parse(text, "x.yaml")
    assert message in str(caught.value)


def test_a_broken_change_keeps_the_previous_classes(tmp_path: Path) -> None:
    path = tmp_path / "data-classes.yaml"
    path.write_text(POLICY)
    held = ClassFile(path)
    path.write_text(POLICY.replace("tenants: {}", "tenants: {clinic: personal}"))
    assert held.current().of_tenant("clinic") == "personal" and held.error is None
    path.write_text(POLICY.replace("tenants: {}", "tenants: {clinic: secret}"))
    assert held.current().of_tenant("clinic") == "personal"
    assert held.error is not None and "tenants.clinic: unknown class 'secret'" in held.error
    path.write_text("version: [")
    with pytest.raises(ClassFileError):
        ClassFile(path)  # at start: refused
