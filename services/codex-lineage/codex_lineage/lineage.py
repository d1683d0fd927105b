"""Pure core: a stored audit record -> the OpenLineage run events it implies. No broker, no store.

One parent run per request (job `request`, run id uuid5 of the response_id); a child run per stage run:
the plan, each task's result (expert, tool, research, graph), the merge, the critic's review, a cache or
exact-repeat answer, each audit event (graph ingest, gap healer, knowledge imports: any actor/action),
feedback and each dead letter. Each child run gets a START (when the stage run started) and a COMPLETE or
FAIL (when its message was published). The same record always gives the same events (rebuilds compare)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from openlineage.client.generated.base import (
    EventType,
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
)
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.parent_run import ParentRunFacet

from codex_lineage.facets import schema_url
from moe_core.audit.records import AuditRecord, iso
from moe_core.contracts import Topics

RUN_NAMESPACE = uuid.UUID("6f1d3c2e-55a4-4c41-9e0f-2b8f7d7c4a10")
PRODUCER = "https://openlineage.io/moe-sovereign-fleet/codex-lineage"
PARENT_JOB = "request"
TASK_TOPIC = {"expert": "tasks_expert", "tool": "tasks_mcp", "research": "tasks_research", "graph": "tasks_graph"}
EVENT_SCHEMA = RunEvent._get_schema()
PARENT_SCHEMA = ParentRunFacet._get_schema()
ERROR_SCHEMA = ErrorMessageRunFacet._get_schema()
Facets = dict[str, dict[str, Any]]  # facet key -> the facet as JSON


def run_id(*parts: str) -> str:
    return str(uuid.uuid5(RUN_NAMESPACE, "/".join(parts)))


@lru_cache(maxsize=1024)  # every event of a request names it: one uuid5 per request, not per event
def parent_run_id(response_id: str) -> str:
    return run_id("request", response_id)


@dataclass(frozen=True)
class Datasets:
    kafka: str  # kafka://host:port
    graph: str  # neo4j://host:port
    chroma: str  # chroma://host:port


@dataclass
class StageRun:
    job: str
    key: str
    start: datetime
    end: datetime
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    facets: Facets
    error: str | None = None
    input_facets: dict[str, Facets] | None = None  # by input dataset name


class Lineage:
    """The events are built as the JSON openlineage-python's Serde.to_dict makes of its RunEvent (nulls left out,
    empty facet maps kept), without its classes: building and serialising them was most of the record's CPU
    (issue 52). `run_event` makes the class of one for openlineage-python's own transports."""

    def __init__(self, topics: Topics, job_namespace: str, datasets: Datasets) -> None:
        self.t = topics
        self.ns = job_namespace
        self.ds = datasets

    def events(self, record: AuditRecord) -> list[dict[str, Any]]:
        """The OpenLineage events (as JSON dicts) of one record; [] for records that end no run."""
        p, rid = record.payload, record.response_id
        end = record.created_at or record.broker_ts
        start = _time(p.get("started_at")) or end
        kind = record.message_type
        tenant: Facets = {"moe_tenant": _facet("MoeTenantRunFacet", tenantId=record.tenant_id, responseId=rid,
                                               replayOf=p.get("replay_of")), **_versions(p.get("versions"))}
        if kind == "ChatRequest":
            return [self._event(EventType.START, PARENT_JOB, parent_run_id(rid), end, [], [self._topic("requests")],
                                {**tenant, **_outcome(detail=str(p.get("mode")))}, parent=None)]
        runs: list[StageRun] = []
        final: tuple[EventType, Facets] | None = None
        if kind == "Plan":
            runs.append(self._plan_run(record, start, end))
        elif kind == "TaskResult":
            runs.append(self._task_run(record, start, end))
        elif kind == "Draft":
            runs.append(self._merge(record, start, end, p.get("answer") or {}, self._topic("drafts")))
        elif kind == "Answer":
            runs.append(self._answer_run(record, start, end))
            final = _final(p, tenant)
        elif kind == "AuditEvent":
            runs.append(self._audit_run(record, start, end))
        elif kind == "Feedback":
            runs.append(StageRun(f"{record.stage}.feedback", f"feedback/{record.identity()}", start, end, [],
                                 [self._topic("feedback")], _outcome(detail=f"rating={p.get('rating')}")))
        elif kind == "DeadLetter":
            runs.append(StageRun(f"{p.get('consumer') or record.stage}.dead-letter", f"dlq/{record.identity()}",
                                 start, end, [(self.ds.kafka, str(p.get("source_topic")))], [self._topic("deadletter")],
                                 {}, error=f"{p.get('error_type')}: {p.get('reason')}"))
        events: list[dict[str, Any]] = []
        for run in runs:
            events += self._stage_events(rid, run, tenant)
        if final is not None:
            events.append(self._event(final[0], PARENT_JOB, parent_run_id(rid), end, [],
                                      [self._topic("answers")], final[1], parent=None))
        return events

    @staticmethod
    def run_event(event: dict[str, Any]) -> RunEvent:
        """openlineage-python's RunEvent of an event of `events` (its facets kept as JSON: Serde.to_dict gives the
        event back as it was)."""
        run, job = event["run"], event["job"]
        return RunEvent(eventType=EventType(event["eventType"]), eventTime=event["eventTime"],
                        producer=event["producer"], run=Run(runId=run["runId"], facets=dict(run["facets"])),
                        job=Job(namespace=job["namespace"], name=job["name"]),
                        inputs=[InputDataset(namespace=d["namespace"], name=d["name"],
                                             inputFacets=d.get("inputFacets")) for d in event["inputs"]],
                        outputs=[OutputDataset(namespace=d["namespace"], name=d["name"]) for d in event["outputs"]])

    def _plan_run(self, record: AuditRecord, start: datetime, end: datetime) -> StageRun:
        p = record.payload
        tasks = p.get("tasks") or []
        task_topics = sorted({self._topic(TASK_TOPIC.get(t.get("kind"), "tasks_expert")) for t in tasks})
        return StageRun(f"{record.stage}.plan", "plan", start, end, [self._topic("requests")],
                        [self._topic("plans"), *task_topics],
                        {**_model(p.get("planner_model"), None), **_tokens(p.get("usage")),
                         **_outcome(detail=f"source={p.get('source')} tasks={len(tasks)}")})

    def _task_run(self, record: AuditRecord, start: datetime, end: datetime) -> StageRun:
        p = record.payload
        task_kind = str(p.get("kind") or "expert")
        if start == end and p.get("duration_ms"):
            start = end - timedelta(milliseconds=float(p["duration_ms"]))
        inputs = [self._topic(TASK_TOPIC.get(task_kind, "tasks_expert"))]
        used: dict[str, Facets] = {}
        if task_kind == "graph":
            inputs.append((self.ds.graph, "knowledge-graph"))
            used = _graph_facts(p.get("sources"))
        return StageRun(f"{record.stage}.{task_kind}", f"task/{p.get('task_id')}", start, end, inputs,
                        [self._topic("results")],
                        {**_model(p.get("model"), p.get("server")), **_tokens(p.get("usage")),
                         **_outcome(confidence=p.get("confidence"), category=p.get("category"),
                                    tool=(p.get("data") or {}).get("tool") if task_kind == "tool" else None)},
                        error=p.get("error"), input_facets=used)

    def _audit_run(self, record: AuditRecord, start: datetime, end: datetime) -> StageRun:
        p = record.payload
        details = p.get("details") or {}
        key = f"audit/{details.get('event_id') or record.identity()}"
        outs = [self._topic("audit")]
        if str(p.get("actor")) in ("graph-ingest", "gap-healer") or "graph" in str(p.get("action")):
            outs.append((self.ds.graph, "knowledge-graph"))
        return StageRun(f"{p.get('actor') or record.stage}.{p.get('action') or 'audit'}", key, start, end,
                        [], outs, _outcome(detail=f"{p.get('subject')}: {p.get('reason') or ''}"[:500]))

    def _answer_run(self, record: AuditRecord, start: datetime, end: datetime) -> StageRun:
        p = record.payload
        if record.stage == "critic":
            return StageRun("critic.review", "review", start, end, [self._topic("drafts")], [self._topic("answers")],
                            {**_tokens(p.get("usage")), **_outcome(detail=_verdict(p))}, _error_text(p))
        if record.stage == "merger":
            return self._merge(record, start, end, p, self._topic("answers"))
        name = "cache" if p.get("cache_hit") else "answer"  # planner (cache hit, preflight), gateway (exact repeat)
        inputs = [self._topic("requests")] + ([(self.ds.chroma, "semantic-cache")] if p.get("cache_hit") else [])
        entry: dict[str, Facets] = {}
        if p.get("cache_hit") and p.get("cache_key"):
            entry = {"semantic-cache": {"moe_cache_entry": _facet("MoeCacheEntryInputDatasetFacet",
                                                                  cacheKey=str(p["cache_key"]))}}
        return StageRun(f"{record.stage}.{name}", name, start, end, inputs, [self._topic("answers")],
                        {**_tokens(p.get("usage")), **_outcome(cache_hit=bool(p.get("cache_hit")))}, _error_text(p),
                        entry)

    def _merge(self, record: AuditRecord, start: datetime, end: datetime, answer: dict[str, Any],
               out: tuple[str, str]) -> StageRun:
        return StageRun(f"{record.stage}.merge", "merge", start, end, [self._topic("plans"), self._topic("results")],
                        [out], {**_tokens(answer.get("usage")),
                                **_outcome(detail=f"experts={','.join(answer.get('experts_used') or [])}")},
                        _error_text(answer))

    def _stage_events(self, rid: str, run: StageRun, tenant: Facets) -> list[dict[str, Any]]:
        rid_ = run_id(rid, run.key)
        facets = {**tenant, **run.facets}
        used = run.input_facets or {}
        start = self._event(EventType.START, run.job, rid_, run.start, run.inputs, run.outputs, facets, parent=rid,
                            input_facets=used)
        if run.error:
            facets = {**facets, **_error(run.error, None)}
        end_type = EventType.FAIL if run.error else EventType.COMPLETE
        return [start, self._event(end_type, run.job, rid_, run.end, run.inputs, run.outputs, facets, parent=rid,
                                   input_facets=used)]

    def _event(self, event_type: EventType, job: str, rid_: str, at: datetime, inputs: list[tuple[str, str]],
               outputs: list[tuple[str, str]], facets: Facets, *, parent: str | None,
               input_facets: dict[str, Facets] | None = None) -> dict[str, Any]:
        run_facets = dict(facets)
        if parent is not None:
            run_facets["parent"] = {"_producer": PRODUCER, "_schemaURL": PARENT_SCHEMA,
                                    "run": {"runId": parent_run_id(parent), "facets": {}},
                                    "job": {"namespace": self.ns, "name": PARENT_JOB, "facets": {}}}
        used = input_facets or {}
        ins = []
        for namespace, name in inputs:
            dataset = {"namespace": namespace, "name": name, "facets": {}}
            if used.get(name):
                dataset["inputFacets"] = used[name]
            ins.append(dataset)
        return {"eventType": event_type.value, "eventTime": iso(at) or "", "producer": PRODUCER,
                "schemaURL": EVENT_SCHEMA, "run": {"runId": rid_, "facets": run_facets},
                "job": {"namespace": self.ns, "name": job, "facets": {}}, "inputs": ins,
                "outputs": [{"namespace": n, "name": d, "facets": {}, "outputFacets": {}} for n, d in outputs]}

    def _topic(self, attr_name: str) -> tuple[str, str]:
        return (self.ds.kafka, getattr(self.t, attr_name))


def _clean(value: Any) -> Any:
    """A value from a payload as Serde.to_dict leaves it: nulls left out of objects and lists, and empty objects
    out of lists."""
    if isinstance(value, dict):
        return {k: c for k, v in value.items() if (c := _clean(v)) is not None}
    if isinstance(value, list):
        return [c for v in value if v is not None and (c := _clean(v)) is not None and c != {}]
    return value


def _facet(name: str, **fields: Any) -> dict[str, Any]:
    """One of the fleet's facets (codex_lineage.facets) as JSON."""
    return {"_producer": PRODUCER, "_schemaURL": schema_url(name),
            **{k: c for k, v in fields.items() if (c := _clean(v)) is not None}}


def _final(p: dict[str, Any], tenant: Facets) -> tuple[EventType, Facets]:
    """How an answer ends its request's run: COMPLETE, or FAIL with its error."""
    error = p.get("error") or {}
    facets: Facets = {**tenant, **_tokens(p.get("usage"))}
    if error:
        said = str(error.get("message") or error)  # the client's words, then the operators' detail
        detail = error.get("detail") or ""
        facets.update(_error(f"{said}: {detail}" if detail else said, str(error.get("code") or "")))
    return (EventType.FAIL if error else EventType.COMPLETE, facets)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _model(model: Any, server: Any) -> Facets:
    return {"moe_model": _facet("MoeModelRunFacet", model=model, server=server)} if model or server else {}


def _versions(recorded: Any) -> Facets:
    """The configuration, prompt template and policy digests the record's stage run stamped on it (none: not
    recorded)."""
    if not isinstance(recorded, dict) or not recorded.get("config"):
        return {}
    prompts, policies = recorded.get("prompts"), recorded.get("policies")
    prompts = prompts if isinstance(prompts, dict) else {}
    policies = policies if isinstance(policies, dict) else {}
    return {"moe_versions": _facet("MoeVersionsRunFacet", service=str(recorded.get("service") or ""),
                                   configDigest=str(recorded["config"]),
                                   promptDigests={str(k): str(v) for k, v in sorted(prompts.items())},
                                   policyDigests={str(k): str(v) for k, v in sorted(policies.items())})}


def _graph_facts(sources: Any) -> dict[str, Facets]:
    """The graph facts (relation ids) and documents a graph result names as its sources, as the knowledge graph's
    input facet ({} when it names none)."""
    refs = [s for s in sources or [] if isinstance(s, dict)]
    facts = sorted({str(s.get("ref")) for s in refs if s.get("kind") == "graph" and s.get("ref")})
    documents = sorted({str(s.get("ref")) for s in refs if s.get("kind") == "document" and s.get("ref")})
    if not facts and not documents:
        return {}
    return {"knowledge-graph": {"moe_graph_facts": _facet("MoeGraphFactsInputDatasetFacet", factIds=facts,
                                                          documents=documents)}}


def _tokens(usage: Any) -> Facets:
    if not isinstance(usage, dict) or not any(usage.values()):
        return {}
    return {"moe_tokens": _facet("MoeTokensRunFacet", promptTokens=int(usage.get("prompt_tokens") or 0),
                                 completionTokens=int(usage.get("completion_tokens") or 0))}


def _outcome(*, confidence: Any = None, category: Any = None, tool: Any = None, cache_hit: bool | None = None,
             detail: str | None = None) -> Facets:
    return {"moe_outcome": _facet("MoeOutcomeRunFacet", confidence=confidence, category=category, tool=tool,
                                  cacheHit=cache_hit, detail=detail)}


def _error(message: str, error_type: str | None) -> Facets:
    return {"errorMessage": {"_producer": PRODUCER, "_schemaURL": ERROR_SCHEMA, "message": message[:4000],
                             "programmingLanguage": "python"},
            "moe_error": _facet("MoeErrorRunFacet", message=message[:4000], errorType=error_type or None)}


def _error_text(answer: dict[str, Any]) -> str | None:
    error = answer.get("error")
    if not error:
        return None
    return str(error.get("message") or error) if isinstance(error, dict) else str(error)


def _verdict(answer: dict[str, Any]) -> str:
    reasoning = str(answer.get("reasoning") or "")
    return "corrected" if "corrected the draft" in reasoning else "confirmed" if "confirmed" in reasoning else "-"
