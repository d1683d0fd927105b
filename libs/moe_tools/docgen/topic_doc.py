"""The topics table of docs/topics.md: each topic's message, who publishes it and who reads it (from the
declarations of moe_core.stage.registry) and what it carries (TOPIC_NOTES, below). A topic without a note, or a
note for a topic that does not exist, stops the generator."""

from __future__ import annotations

from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_core.contracts.topics import COMPACTED, TOPIC_KEYS, TOPIC_MESSAGES, UNRECORDED, Topics
from moe_core.stage.spec import EVERY_TOPIC

# What a topic carries and what the declarations cannot say (publishers outside the fleet, why a service
# publishes it). One line each; the producer and consumer columns are generated.
TOPIC_NOTES: dict[str, str] = {
    "requests": "a client's request (the gateway), or a recorded request sent anew by `make replay ARGS=\"rerun …\"`",
    "plans": "the planner's plan of one request: its tasks and how to merge them",
    "tasks_expert": "one expert task of a plan (one message per task)",
    "tasks_research": "research tasks: planned for current or external facts, the `-research` mode's, or the "
                      "merger's research fallback",
    "tasks_mcp": "tool tasks: the precision preflight and the planner model's tool calls",
    "tasks_graph": "the one `knowledge_graph` task of every non-trivial plan",
    "results": "the outcome of one task, whichever worker ran it",
    "drafts": "a medical or legal answer the critic reviews before it is published",
    "housekeeping": "a client's own chore (a chat title, tags, ...: moe_core.llm.housekeeping), routed by the gateway "
                    "past the pipeline: the planner answers it with one small-model call",
    "guard": "an answer of a tenant with output guardrails, checked by the guardrail stage before it is published",
    "ingest": "an answer to learn from (every published answer; reviewed ones from the critic, guarded ones from "
              "the guardrail stage (never a blocked one); "
              "`POST /v1/memory/ingest`)",
    "ontology_gaps": "terms the knowledge graph does not know",
    "linting": "a request to lint the graph: an operator or a scheduler (no fleet service publishes it)",
    "audit": "knowledge and administration decisions (quarantine, keys, documents, imports, policy decisions), "
             "and the gateway's routing of a client's housekeeping request",
    "progress": "a stage's progress notes for the stream",
    "answers": "the final answer: the merger's, the critic's, a semantic-cache hit or a housekeeping answer "
               "(planner) or an exact repeat "
               "the gateway answered itself",
    "feedback": "a rating (`POST /v1/feedback`) or the critic's wrong/unsafe verdict: expert scores, cache flags, "
                "verified or flagged relations",
    "deltas": "the judge's tokens and the thinking as generated, or a trivial question's answer as its expert writes "
              "it (ExpertTask.stream_answer; the critic publishes none)",
    "cancel": "the client disconnected or the deadline passed: every process of the cancellable stages stops the "
              "request",
    "deadletter": "a message that could not be processed, with its reason (`Bus.dead_letter`, any consumer); read "
                  "it by hand ([operations.md](operations.md#dead-letters))",
    "audit_checkpoints": "signed, RFC 3161-timestamped checkpoints of each tenant's audit chain, for auditors and "
                         "archives ([audit.md](audit.md))",
    "usage": "each request's charge once its usage is settled (on its Answer, abandoned, or by the sweeper); "
             "written to `usage_requests` and `usage_daily` once per `response_id`",
    "cache_entries": "each good answer stored in the semantic cache, and the same entry again when a rating of 1-2 "
                     "flags it: every planner replica's in-memory index; the publishing handler writes Chroma's copy",
}


# Publishers no declaration names: the bus itself.
IMPLICIT_PRODUCERS: dict[str, str] = {"deadletter": "any consumer (the bus)"}


def _producers(kind: str) -> list[str]:
    declared = [d.name for d in stage_registry.declarations() if kind in d.publishes]
    return declared + ([IMPLICIT_PRODUCERS[kind]] if kind in IMPLICIT_PRODUCERS else [])


def _consumers(kind: str) -> list[str]:
    out = []
    for declared in stage_registry.declarations():
        for consumes in declared.all_consumed():
            if consumes.topic == EVERY_TOPIC:
                if kind not in UNRECORDED:
                    out.append(f"{declared.name} (`{declared.name}`: every topic)")
            elif consumes.topic == kind:
                group = f"`{declared.name}`" if consumes.group else (
                    "no group, from the start" if consumes.from_start else "no group: every process")
                out.append(f"{declared.name} ({group})")
        if kind in getattr(declared, "reads", ()):  # read back by key, no subscription (ServiceDeclaration.reads)
            out.append(f"{declared.name} (no group: reads back by key)")
    return list(dict.fromkeys(out))


def table(repo: Path) -> str:
    topics = Topics.for_namespace()
    missing = sorted(set(TOPIC_MESSAGES) - set(TOPIC_NOTES))
    stale = sorted(set(TOPIC_NOTES) - set(TOPIC_MESSAGES))
    if missing or stale:
        raise ValueError(f"moe_tools.docgen.topic_doc.TOPIC_NOTES: no note for {missing}, "
                         f"notes without a topic {stale}")
    lines = ["| topic | message | key | producers | consumers (group) | what it carries |", "|---|---|---|---|---|---|"]
    for kind, message in TOPIC_MESSAGES.items():
        key = TOPIC_KEYS.get(kind, "response_id") + (" (compacted)" if kind in COMPACTED else "")
        lines.append(f"| `{getattr(topics, kind)}` | `{message}` | `{key}` | {', '.join(_producers(kind)) or '—'} | "
                     f"{', '.join(_consumers(kind)) or '—'} | {TOPIC_NOTES[kind]} |")
    return "\n".join(lines)
