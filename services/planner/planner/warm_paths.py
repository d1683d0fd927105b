"""The planner's per-question paths run once at start-up on sample questions (issue 52, item 6): what a replica's
first requests would otherwise load lazily (the preflight's readers and their unit registry, the domain keywords'
ontology words, compiled patterns, the cache guards' features) is then in the start level of its memory, not
growth over its first requests (measured with tests.infra.planner.planner_memory: the first 8 requests of a cold
planner added ~12 MB, ~5 MB of it traced Python allocations: imports, pint's registry, regular expressions). Pure
functions only: nothing is published, stored or asked of a model."""

from __future__ import annotations

from planner.cache_text import features, normalise
from planner.complexity import ProtectedDomains, estimate, with_domains
from planner.preflight import recognise
from planner.tool_catalogue import ToolCatalogue

# one of each kind the preflight reads (units, percentages, dates, arithmetic, money), a trivial, a clinical and a
# complex question
SAMPLES = (
    "Convert 12 miles to kilometres.",
    "What is 15% of 240?",
    "What date is 3 weeks after 2025-03-14?",
    "What is (17 * 23) - 4?",
    "How much is 250 USD in EUR?",
    "Translate 'room number 101' into French.",
    "Is ibuprofen safe for a patient with kidney disease?",
    "Compare lithium and a violin as they were in the year 1001: explain in detail their history, their physics "
    "and their everyday use.",
)


def warm_paths(tools: ToolCatalogue, protected: ProtectedDomains, trivial_max_words: int) -> int:
    """Each sample through the preflight, the complexity estimate and the cache's guards; the samples run."""
    for question in SAMPLES:
        recognise(question, tools)
        with_domains(estimate(question, trivial_max_words), question, protected)
        features(normalise(question))
    return len(SAMPLES)
