"""The envelope every message carries. Fields are only ever added, never renamed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from moe_core.contracts.template_models import TemplateModels


def utcnow() -> datetime:
    return datetime.now(UTC)


class TraceContext(BaseModel):
    """W3C trace context, copied from the producing span (also sent as Kafka headers)."""

    traceparent: str | None = None
    tracestate: str | None = None


class RunVersions(BaseModel):
    """What the stage run that published a message ran with (moe_core.runtime.run_versions): an auditor proves with it
    which configuration and which prompt templates produced an answer."""

    service: str = Field(description="The service that published the message")
    config: str = Field(description="sha256:<hex> of the service's settings as canonical JSON (secrets and "
                        "passwords masked; moe_core.runtime.run_versions.config_view)")
    prompts: dict[str, str] = Field(default_factory=dict, description="Prompt template name -> sha256:<hex> of "
                                    "its text as sent (the system part, without the user's data); empty: the run "
                                    "called no model")
    policies: dict[str, str] = Field(default_factory=dict, description="Policy decision path (e.g. "
                                     "moe/memory/decision) -> sha256:<hex> of the policies in force when the run "
                                     "asked it (Open Policy Agent's modules); empty: the run decided nothing by "
                                     "policy")


class ModelOutput(BaseModel):
    """One model call of a stage run as it was answered (moe_core.runtime.replay): what `replay rerun
    --as-recorded` answers the same call with when it re-executes the request."""

    stage: str = Field(description="The service whose run called the model")
    task_id: str | None = Field(default=None, description="The task the run worked on (task stages); unset: a "
                                "request-level run (planner, merger, critic)")
    system: str = Field(description="sha256:<hex> of the call's system text (its prompt template as rendered)")
    prompt: str = Field(description="sha256:<hex> of the whole call: messages, tools, output schema")
    content: str = Field(default="", description="The model's output text as received")
    finish_reason: str = "stop"
    model: str = ""
    server: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list, description="The model's tool calls")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    replayed: bool = Field(default=False, description="Answered from the record (a replay as recorded), no model "
                           "was called")
    error: str | None = Field(default=None, description="A replay as recorded could not answer the call from "
                              "the record: why (the call failed)")
    failure: dict[str, Any] | None = Field(default=None, description="The call failed (every server and model "
                                           "tried): the inference error's kind, message, server, model and status; "
                                           "a replay as recorded fails the same call the same way")


class RecordedResult(BaseModel):
    """A tool task's result as the record of the original request holds it (a precision tool, a web search, a
    knowledge-graph read): what `replay rerun --as-recorded` answers the same task with instead of running the tool
    against today's data (moe_core.stage.replay)."""

    task_id: str = Field(description="The task of the original plan")
    kind: str = Field(description="Its kind: tool | research | graph")
    category: str = Field(description="Its category")
    instruction: str = Field(description="sha256:<hex> of the task message's instruction as the original run "
                             "received it (moe_core.stage.replay.instruction_digest): a re-run task whose "
                             "instruction differs is not answered from the record")
    result: dict[str, Any] = Field(default_factory=dict, description="The recorded TaskResult's own fields "
                                   "(content, data, sources, confidence, error, model, server, usage, duration_ms, "
                                   "tool_calls)")


class StageCost(BaseModel):
    """What the stage run that published a message cost so far (moe_core.runtime.observability.ledger): the overhead
    ledger an auditor checks the fleet's own time against, per stage and per request."""

    stage: str = Field(description="The service whose run published the message")
    task_id: str | None = Field(default=None, description="The task the run worked on (task stages run side by "
                                "side); unset: a request-level run (planner, merger, critic)")
    handler_ms: float = Field(default=0.0, description="Wall time from the run's start (its message consumed) to "
                              "this publish, model calls included")
    model_ms: float = Field(default=0.0, description="Wall time the run spent in model calls (overlapping calls "
                            "counted once)")
    cpu_ms: float = Field(default=0.0, description="CPU time of the run: its own steps on the event loop and the "
                          "threads it handed work to")
    model_calls: int = Field(default=0, description="Model calls the run made")


class Envelope(BaseModel):
    """Common header of every message. Unknown fields are ignored so producers may add fields first."""

    model_config = ConfigDict(extra="ignore")

    response_id: str = Field(min_length=1, max_length=128, description="Id of the client request")
    schema_version: int = Field(default=1, ge=1)
    created_at: datetime = Field(default_factory=utcnow)
    deadline_at: datetime = Field(description="Absolute deadline (UTC) of the whole request")
    tenant_id: str = Field(min_length=1, max_length=128)
    trace: TraceContext = Field(default_factory=TraceContext)
    live: bool = Field(default=True, description="The client streams: live events (progress, answer deltas) "
                                                 "are published for this request; false skips them")
    started_at: datetime | None = Field(default=None, description="When the stage run that published this message "
                                        "started (lineage: the run's START time); unset = not recorded")
    replay_of: str | None = Field(default=None, max_length=128, description="A replay of this earlier response_id "
                                  "(replay rerun): no cache, nothing learned into the graph")
    template: str | None = Field(default=None, max_length=64, description="The named expert template the "
                                 "request runs with (planner, expert and judge models; moe_core.llm.templates); "
                                 "unset = the global model assignments")
    template_models: TemplateModels | None = Field(default=None, description="The models of the request's "
                                                   "template when it is the tenant's own (resolved at the edge; "
                                                   "stages call these, moe_core.llm.templates.of_message); unset: a "
                                                   "file template by its name, or none")
    data_class: str | None = Field(default=None, max_length=64, description="The request's data class "
                                   "(policy/data-classes.yaml): at the edge, the highest of its key's and the "
                                   "client's x-moe-data-class header; from the planner on, with its tenant's and "
                                   "template's too. Unset: its tenant's")
    egress: list[str] | None = Field(default=None, description="Where this request's model calls may go, as the "
                                     "planner's egress decision allowed them (`server/model`, policy/opa/egress.rego), "
                                     "plus `research` when web research is allowed, `cache` when its answer may "
                                     "enter the shared cache, `tool:*` when the tools were decided and "
                                     "`no-tool:<name>` for each tool its tasks may not run (older messages: "
                                     "`tool:<name>` for each tool they may run); every stage's inference client "
                                     "calls nothing else, and mcp runs no other tool. Unset: not decided (no "
                                     "data-class policy in force)")
    versions: RunVersions | None = Field(default=None, description="The configuration and prompt template "
                                         "digests of the stage run that published this message (set by the bus); "
                                         "unset = not recorded (older producers, live events)")
    model_outputs: list[ModelOutput] | None = Field(default=None, description="The model calls of the stage run "
                                                    "that published this message, with their outputs, each on the "
                                                    "first message the run published after it (set by the bus); "
                                                    "unset: none")
    cost: StageCost | None = Field(default=None, description="What the stage run that published this message cost "
                                   "so far: handler, model and CPU time (set by the bus; unset: outside a stage "
                                   "run, e.g. the edge, or a live event)")
    as_recorded: list[ModelOutput] | None = Field(default=None, description="A replay as recorded (`replay rerun "
                                                  "--as-recorded`): the model outputs of the original request, which "
                                                  "answer this replay's model calls instead of the models")
    as_recorded_results: list[RecordedResult] | None = Field(default=None, description="A replay as recorded: "
                                                             "the tool task results of the original request, "
                                                             "which answer this replay's tool, research and graph "
                                                             "tasks instead of today's tools and data")

    def remaining_seconds(self, now: datetime | None = None) -> float:
        return (self.deadline_at - (now or utcnow())).total_seconds()

    def expired(self, now: datetime | None = None) -> bool:
        return self.remaining_seconds(now) <= 0

    def header_marks(self) -> dict[str, str]:
        """Kafka headers the message's own content sets, beside the bus's (moe_core.contracts.headers): what a
        consumer may act on before it parses the payload (moe_core.stage.spec.Consumes.skip_marked). Not signed
        (the producer's signature covers the payload): a consumer may only skip by them, never trust them."""
        return {}

    def child_fields(self) -> dict[str, Any]:
        """The envelope fields a follow-up message inherits (same request, same deadline)."""
        return {
            "response_id": self.response_id,
            "deadline_at": self.deadline_at,
            "tenant_id": self.tenant_id,
            "trace": self.trace,
            "live": self.live,
            "replay_of": self.replay_of,
            "template": self.template,
            "template_models": self.template_models,
            "data_class": self.data_class,
            "egress": self.egress,
            "as_recorded": self.as_recorded,
            "as_recorded_results": self.as_recorded_results,
        }


def deadline_in(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)
