"""[REF:entity] tags: stripped from the judge's text (also token by token) and returned as graph sources."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from merger.provenance import RefStripper, graph_context, graph_sources
from moe_core.contracts import Source, TaskResult, deadline_in

pytestmark = pytest.mark.unit


def strip_refs(text: str) -> tuple[str, list[str]]:
    """The whole text through one stripper at once."""
    stripper = RefStripper()
    return stripper.feed(text) + stripper.flush(), stripper.refs


@pytest.mark.parametrize(("text", "clean", "refs"), [
    ("Aspirin treats headaches [REF:Aspirin].", "Aspirin treats headaches.", ["Aspirin"]),
    ("A [REF:A] and B [ref:B] [REF:A] here", "A and B here", ["A", "B"]),
    ("  \n Arrays [start at] zero [REF:  Python  lists ]\n", "Arrays [start at] zero", ["Python lists"]),
    ("Unclosed [REF:broken\nnext line", "Unclosed [REF:broken\nnext line", []),
    ("Tail [REF:partial", "Tail [REF:partial", []),
    ("x [[REF:y]]", "x []", ["y"]),
    ("[REF:] empty", "empty", []),
])
def test_strip_refs(text: str, clean: str, refs: list[str]) -> None:
    assert strip_refs(text) == (clean, refs)


@settings(max_examples=80, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab [REF:]\n")), max_size=80),
       cuts=st.lists(st.integers(min_value=0, max_value=100), max_size=8))
def test_any_split_of_the_stream_gives_the_same_result(text: str, cuts: list[int]) -> None:
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    stripper = RefStripper()
    streamed = "".join(stripper.feed(p) for p in pieces) + stripper.flush()
    assert (streamed, stripper.refs) == strip_refs(text)


def test_refs_map_to_the_graph_results_relations() -> None:
    graph = TaskResult(response_id="r", tenant_id="t", deadline_at=deadline_in(9), task_id="g1", kind="graph",
                       category="knowledge_graph", content="facts", sources=[
                           Source(kind="graph", ref="rel-1", title="Aspirin TREATS Headache"),
                           Source(kind="graph", ref="rel-2", title="Aspirin INTERACTS_WITH Warfarin"),
                           Source(kind="graph", ref="rel-3", title="Ibuprofen TREATS Fever")])
    sources = graph_sources(["aspirin", "Unknown Thing", "rel-3"], [graph])
    assert [(s.kind, s.ref, s.title) for s in sources] == [
        ("graph", "rel-1", "Aspirin TREATS Headache"), ("graph", "rel-2", "Aspirin INTERACTS_WITH Warfarin"),
        ("graph", "Unknown Thing", "Unknown Thing"), ("graph", "rel-3", "Ibuprofen TREATS Fever")]



def test_the_facts_the_judge_was_given_and_did_not_cite_are_its_context() -> None:
    graph = TaskResult(response_id="r", tenant_id="t", deadline_at=deadline_in(9), task_id="g1", kind="graph",
                       category="knowledge_graph", content="facts", sources=[
                           Source(kind="graph", ref="rel-1", title="Vexotrin CONTRAINDICATES Severe kidney disease"),
                           Source(kind="graph", ref="rel-2", title="Vexotrin TREATS Sepsis"),
                           Source(kind="document", ref="col/doc-1:0", title="Ward 7")])
    cited = graph_sources(["rel-2"], [graph])
    assert [(s.kind, s.ref) for s in cited + graph_context([graph], cited)] == [
        ("graph", "rel-2"), ("graph_context", "rel-1")]
    assert [(s.kind, s.ref, s.title) for s in graph_context([graph], [])] == [
        ("graph_context", "rel-1", "Vexotrin CONTRAINDICATES Severe kidney disease"),
        ("graph_context", "rel-2", "Vexotrin TREATS Sepsis")]
