"""The counts the docs state in prose ("31 precision tools", "327 entities") are the code's. The prose names no
count of services or stages (the generated service table does), so adding a service changes no sentence. Each
count is a claim below, found by its sentence; a count of services, stages, topics, categories, tools, modes,
entities, relations, classes or domains that no claim covers fails too, so a new sentence with a number is
either checked here or listed as not being a count of the code."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from moe_core.contracts import Topics
from moe_core.contracts.experts import EXPERT_CATEGORIES
from moe_core.contracts.tools import TOOL_SPECS
from moe_core.knowledge.graph import ontology, vocab
from moe_core.llm.modes import MODES
from tests.deploy.doc_support import NUMBER_PATTERN, doc_paths, number, read

pytestmark = pytest.mark.unit

N = NUMBER_PATTERN
TOPICS = lambda: len(Topics.__dataclass_fields__)  # noqa: E731
MODE_IDS = lambda: len(MODES)  # noqa: E731
CATEGORIES = lambda: len(EXPERT_CATEGORIES)  # noqa: E731
TOOLS = lambda: len(TOOL_SPECS)  # noqa: E731
ENTITIES = lambda: len(ontology.load().entities)  # noqa: E731
RELATIONS = lambda: len(ontology.load().relations)  # noqa: E731
CLASSES = lambda: sum(e.is_class for e in ontology.load().entities)  # noqa: E731
DOMAINS = lambda: len(vocab.DOMAINS)  # noqa: E731


@dataclass(frozen=True)
class Claim:
    path: str
    pattern: str  # one group per count, in order
    counts: tuple[Callable[[], int], ...]


CLAIMS = [
    Claim("README.md", rf"All {N} mode ids", (MODE_IDS,)),
    Claim("README.md", rf"the mcp service's {N} precision tools", (TOOLS,)),
    Claim("README.md", rf"the {N} categories with their system prompts", (CATEGORIES,)),
    Claim("README.md", rf"ontology \({N} entities with aliases, {N} typed relations", (ENTITIES, RELATIONS)),
    Claim("docs/architecture.md", rf"`ontology.yaml`: {N} entities \({N} classes\).*?\s{N} typed relations",
          (ENTITIES, CLASSES, RELATIONS)),
    Claim("docs/architecture.md", rf"each of the {N} entities", (ENTITIES,)),
    Claim("docs/seed-defaults.md", rf"ontology has {N} entities", (ENTITIES,)),
    Claim("docs/architecture.md", rf"\| {N} topics: ", (TOPICS,)),
    Claim("docs/architecture.md", rf"\({N} mode ids\)", (MODE_IDS,)),
    Claim("services/expert-worker/README.md", rf"each of the {N} categories", (CATEGORIES,)),
    Claim("services/mcp/README.md", rf"\n{N} tools\. Contracts live in", (TOOLS,)),
    Claim("services/gap-healer/README.md", rf"ontology's classes \({N}: ", (CLASSES,)),
    Claim("services/gap-healer/README.md", rf"one of the {N}\s+domains", (DOMAINS,)),
]

# Numbers beside these nouns that are not counts of the code: limits, measurements, examples.
NOT_COUNTS = {
    ("docs/performance-history.md", "12 entities"),  # what one bench.token_stages run's learning wrote: measured
    ("docs/performance-history.md", "8 relations"),  # (the same run)
    ("docs/performance-history.md", "300 entities"),  # the tenant size the statements were profiled at: measured
    ("docs/performance-history.md", "1,100 entities"),  # the tenant ingest_profile built (session 39): measured
    ("docs/performance-history.md", "1,097 relations"),  # (the same tenant)
    ("docs/architecture.md", "4,060 learned entities"),  # the sizes bench.lexicon_costs grew a tenant to: measured
    ("docs/console.md", "zero entities"),  # the drift flag's name (an ingest run that added none)
    ("docs/api.md", "10,000 entities"),  # a bundle's size limit
    ("docs/api.md", "20 relations"),  # per search hit
    ("docs/architecture.md", "104 entities"),  # the original's ontology
    ("docs/architecture.md", "13 services"),  # the design sketch's count (../shared/ARCHITECTURE.md)
    ("docs/seed-defaults.md", "30 entities"),  # the blast-radius limit
    ("docs/knowledge-bundles.md", "two entities"),
    ("docs/knowledge-bundles.md", "1000 relations"),  # a measured import
    ("docs/knowledge-bundles.md", "5000 relations"),
    ("docs/semantic-cache.md", "20 different entities"),
    ("docs/topics.md", "one of the modes"),
    ("services/gap-healer/README.md", "two visible relations"),
    ("services/graph-rag/README.md", "two asked-about entities"),
    ("helm/README.md", "one folder of dashboards"),
    ("deploy/docker/README.md", "one stage"),  # the image's build stages
}
COUNTED = r"(?:pipeline stages|stages|services|topics|categories|precision tools|tools|entities|" \
          r"typed relations|relations|classes|mode ids|modes|domains)"


def shown(claim: Claim) -> str:
    return claim.pattern.replace(N, "<n>")


@pytest.mark.parametrize("claim", CLAIMS, ids=[f"{c.path}:{shown(c)[:40]}" for c in CLAIMS])
def test_stated_counts_are_the_code_counts(claim: Claim) -> None:
    matches = list(re.finditer(claim.pattern, read(claim.path), re.S | re.I))
    assert matches, f"{claim.path} no longer says {shown(claim)!r}: update the claim with the sentence"
    for match in matches:
        stated = [number(g) for g in match.groups()]
        assert stated == [count() for count in claim.counts], f"{claim.path}: {match.group(0)!r}"


@pytest.mark.parametrize("path", doc_paths())
def test_every_count_in_the_docs_is_checked(path: str) -> None:
    text = read(path)
    covered = [m.span() for c in CLAIMS if c.path == path for m in re.finditer(c.pattern, text, re.S | re.I)]
    unchecked = []
    for match in re.finditer(rf"\b{N}\s+(?:[\w-]+\s+){{0,2}}?{COUNTED}\b", text, re.I):
        inside = any(start <= match.start() and match.end() <= stop for start, stop in covered)
        if not inside and (path, match.group(0)) not in NOT_COUNTS:
            unchecked.append(match.group(0))
    assert not unchecked, f"{path}: counts no claim checks (add them to CLAIMS or NOT_COUNTS): {unchecked}"


def test_every_listed_exception_is_still_in_its_document() -> None:
    stale = [(path, phrase) for path, phrase in NOT_COUNTS if phrase not in read(path)]
    assert not stale, f"remove from NOT_COUNTS: {stale}"
