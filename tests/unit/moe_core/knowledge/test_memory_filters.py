"""Scoped memory without infrastructure: the filter vocabulary (unknown or malformed fields are errors,
never ignored), its translation into Chroma clauses, the planner's extraction without a model call, and
what an upload becomes (type, text, bounds, chunks)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from control_plane.memory.files import MAX_TOKENS, Limits, MemoryInputError, chunks, media_type, text_of
from control_plane.memory.pdf_text import PdfWorker
from moe_core.contracts import ChatMessage, ChatRequest, Plan, PlannedTask, deadline_in
from moe_core.knowledge.memory import FilterError, parse_filters, where, where_document
from moe_core.knowledge.memory.filters import SHARED_TENANT
from planner.augment import augment
from planner.filters import extract, time_range
from planner.settings import PlannerSettings
from tests.support.pdf import busy_pdf, expanding_pdf, text_pdf

pytestmark = pytest.mark.unit
LIMITS = Limits(max_bytes=4096, max_chars=2000, max_pages=2)


@pytest.mark.parametrize(("raw", "field"), [
    ({"department": "cardiology"}, "department"),
    ({"domain": "medical", "author": "x"}, "author"),
    ({"domain": "Not A Slug!"}, "domain"),
    ({"time_range": {"from": "2024-05-01", "to": "2023-01-01"}}, "time_range"),
    ({"time_range": {"since": "2024-05-01"}}, "time_range.since"),
    ({"entity": ""}, "entity"),
])
def test_a_filter_outside_the_vocabulary_is_an_error_naming_the_field(raw: dict, field: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filters(raw)
    assert caught.value.field == field


def test_filters_become_a_where_clause_within_the_tenant_and_a_mention_clause() -> None:
    filters = parse_filters({"domain": "medical", "document_set": ["ward-7", "icu"], "entity": "Warfarin",
                             "time_range": {"from": "2023-01-01", "to": "2023-12-31"}})
    assert filters.dump() == {"domain": ["medical"], "document_set": ["ward-7", "icu"], "entity": ["Warfarin"],
                              "time_range": {"from": "2023-01-01", "to": "2023-12-31"}}
    assert where(filters, "acme") == {"$and": [
        {"tenant_id": {"$in": ["acme", SHARED_TENANT]}}, {"domain": {"$in": ["medical"]}},
        {"document_set": {"$in": ["ward-7", "icu"]}}, {"doc_time": {"$gte": 1672531200}},
        {"doc_time": {"$lte": 1704067199}}]}
    assert where_document(filters) == {"$or": [{"$contains": "Warfarin"}, {"$contains": "warfarin"}]}
    assert where(parse_filters({}), "acme") == {"tenant_id": {"$in": ["acme", SHARED_TENANT]}}


@pytest.mark.parametrize(("question", "categories", "expected"), [
    ("How often is INR checked for warfarin patients?", ["medical_consult"], {"domain": "medical"}),
    ("Which clauses changed since 2021 in our vendor-contracts documents?", ["legal_advisor", "general"],
     {"domain": "legal", "document_set": "vendor-contracts", "time_range": {"from": "2021-01-01"}}),
    ('What did "Project Falcon" spend between 2019 and 2021? document set finance', ["data_analyst"],
     {"domain": "data", "document_set": "finance", "entity": "Project Falcon",
      "time_range": {"from": "2019-01-01", "to": "2021-12-31"}}),
    ("Tell me a story about a dragon", ["creative_writer"], {}),
    ("What changed in 2023?", ["general"], {"time_range": {"from": "2023-01-01", "to": "2023-12-31"}}),
    ("Medical and legal aspects of consent", ["medical_consult", "legal_advisor"], {"domain": ["medical", "legal"]}),
])
def test_the_planner_extracts_filters_from_the_question_and_its_categories(
        question: str, categories: list[str], expected: dict) -> None:
    assert extract(question, categories) == expected
    parse_filters(expected)  # always inside the vocabulary


def test_time_cues() -> None:
    assert time_range("anything after 2021-05-01 before 2022") == {"from": "2021-05-02", "to": "2021-12-31"}
    assert time_range("reports until 2020-02-29") == {"to": "2020-02-29"}
    assert time_range("between 2022 and 2020") is None  # backwards: no filter rather than an empty scope
    assert time_range("in 1066") is None and time_range("room 2023-B") is None


def test_the_plan_carries_the_filters_and_keeps_its_own() -> None:
    request = ChatRequest(response_id="r1", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content="q")])
    tasks = [PlannedTask(task_id="t1", category="medical_consult", instruction="x")]
    base = {**request.child_fields(), "mode": "moe-orchestrator", "tasks": tasks, "complexity": "moderate",
            "question": "How should warfarin doses change during 2024 for elderly patients?"}
    settings = PlannerSettings()
    plan = augment(Plan(**base), request, settings)
    assert plan.metadata_filters == {"domain": ["medical"], "time_range": {"from": "2024-01-01", "to": "2024-12-31"}}
    assert any(t.kind == "graph" for t in plan.tasks)  # the graph task that carries them downstream
    own = augment(Plan(**base, metadata_filters={"domain": ["cardiology"]}), request, settings)
    assert own.metadata_filters["domain"] == ["cardiology"]
    preflight = augment(Plan(**base, source="preflight"), request, settings)
    assert preflight.metadata_filters == {}


async def test_upload_types_text_and_bounds() -> None:
    assert media_type("notes.MD", None) == "text/markdown"
    assert media_type("upload", "text/plain; charset=utf-8") == "text/plain"
    assert media_type("scan.pdf", "application/octet-stream") == "application/pdf"
    with pytest.raises(MemoryInputError, match="unsupported document type") as caught:
        media_type("slides.pptx", "application/vnd.ms-powerpoint")
    assert caught.value.status == 400
    cases = [(b"", "text/plain", 400, "empty"), (b"   \n ", "text/markdown", 400, "no text"),
             (b"x" * 5000, "text/plain", 413, "bytes"), (b"y " * 1500, "text/plain", 413, "characters"),
             (b"\xff\xfe\x00bad", "text/plain", 400, "UTF-8"), (b"plain text", "application/pdf", 400, "not a PDF"),
             (b"%PDF-1.4\ngarbage", "application/pdf", 400, "could not be read"),
             (text_pdf([]), "application/pdf", 400, "no extractable text")]
    for data, kind, status, reason in cases:
        with pytest.raises(MemoryInputError, match=reason) as caught:
            await text_of(data, kind, LIMITS)  # type: ignore[arg-type]
        assert caught.value.status == status, reason
    assert await text_of(text_pdf(["Exit (north) only."]), "application/pdf", LIMITS) == "Exit (north) only."


async def test_a_pdf_that_expands_is_refused_within_its_bounds() -> None:
    """PDF bombs, read by the real child process: 5 KB that read as 400 pages of 600,000 characters stop at
    the first page past the character limit; 4 KB whose pages cost seconds of CPU each (500 pages: half an
    hour) is ended by the child's CPU limit, or by the wall-time limit."""
    limits = Limits(max_bytes=1 << 20, max_chars=500_000, max_pages=500)
    expanding = expanding_pdf(400, 600_000)
    assert len(expanding) < 6000
    with pytest.raises(MemoryInputError) as caught:
        await text_of(expanding, "application/pdf", limits)
    assert (caught.value.status, caught.value.code) == (413, "document_too_large")
    assert "more than 500000 characters of text (by page 1 of 400" in caught.value.message
    busy = busy_pdf(500)
    for worker, reason in ((PdfWorker(cpu_s=1), "more than 1 s of CPU, MOE_MEMORY_PDF_CPU_S"),
                           (PdfWorker(cpu_s=3600, timeout_s=1), "more than 1 s, MOE_MEMORY_PDF_TIMEOUT_S")):
        with pytest.raises(MemoryInputError) as caught:
            await text_of(busy, "application/pdf", replace(limits, pdf=worker))
        assert (caught.value.status, caught.value.code) == (422, "document_too_complex")
        assert reason in caught.value.message


async def test_a_pdf_whose_font_maps_glyphs_to_lone_surrogates_reads_them_as_u_fffd() -> None:
    """A broken ToUnicode map is the producer's fault, not the document's: its glyphs become U+FFFD (no store or
    tokenizer takes a lone surrogate), the rest of the text is kept."""
    broken = text_pdf(["Ward ABC."], to_unicode={"A": "D800", "B": "DC00D800", "C": "0043"})
    assert await text_of(broken, "application/pdf", LIMITS) == "Ward \ufffd\ufffd\ufffdC."


def test_chunks_fit_the_embedding_model_and_follow_markdown_structure() -> None:
    from tokenizers import Tokenizer

    from moe_core.knowledge.embeddings import model_files

    section = "Sentence about ward routines and checks. " * 40
    text = f"# Handbook\n\n## Night shift\n\n{section}\n\n## Day shift\n\n{section}"
    parts = chunks(text, "text/markdown", 120, 16)
    tokenizer = Tokenizer.from_file(str(model_files()[1]))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    sizes = [len(tokenizer.encode(p).ids) for p in parts]
    assert len(parts) > 4 and max(sizes) <= MAX_TOKENS  # nothing the model would cut off
    assert sorted(sizes)[len(sizes) // 2] <= 120
    assert parts[0].startswith("# Handbook\n\n## Night shift\n\nSentence")  # headings stay with their text
    assert any(p.startswith("## Day shift\n\nSentence") for p in parts)
    assert not any(all(line.startswith("#") for line in p.splitlines() if line) for p in parts)
    assert "".join(parts).count("Sentence about") >= 80  # nothing lost (overlap may repeat a little)
