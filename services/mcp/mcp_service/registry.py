"""The one tool registry the three front doors share (Kafka, REST, MCP): contracts of the enabled tools,
argument validation against each tool's JSON Schema, and time-bounded invocation."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator, exceptions
from jsonschema.exceptions import best_match
from prometheus_client import Counter, Histogram

from mcp_service.runner import RawOutcome, WorkerPool
from moe_core.contracts.tools import ToolErrorCode, ToolSpec
from moe_core.llm.tool_switches import DisabledTools
from moe_core.runtime.observability.metrics import REGISTRY

TOOL_CALLS = Counter("moe_tool_calls_total", "Precision tool calls", ["tool", "outcome", "via"], registry=REGISTRY)
TOOL_SECONDS = Histogram("moe_tool_seconds", "Duration of one precision tool call", ["tool"], registry=REGISTRY,
                         buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


@dataclass(frozen=True)
class Outcome:
    """A call's outcome with the contract it ran under."""

    tool: str
    version: str | None
    schema_sha256: str | None
    text: str = ""
    result: dict[str, Any] | None = None
    code: ToolErrorCode | None = None
    message: str = ""
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code is None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"tool": self.tool, "version": self.version, "schema_sha256": self.schema_sha256,
                                "ok": self.ok, "duration_ms": round(self.duration_ms, 3)}
        if self.ok:
            body.update(text=self.text, result=self.result)
        else:
            body["error"] = {"code": self.code, "message": self.message}
        return body


@dataclass
class Registry:
    specs: dict[str, ToolSpec]
    pool: WorkerPool
    timeout_s: float = 5.0
    switches: DisabledTools | None = None  # the operator's switches (moe_core.llm.tool_switches); None: all on
    validators: dict[str, Draft202012Validator] = field(init=False, default_factory=dict)
    broken: dict[str, str] = field(init=False, default_factory=dict)
    executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        for name, spec in self.specs.items():
            try:
                Draft202012Validator.check_schema(spec.input_schema)
                self.validators[name] = Draft202012Validator(spec.input_schema)
            except exceptions.SchemaError as exc:  # a defect of the contract: refuse calls, say why
                self.broken[name] = exc.message
        self.executor = ThreadPoolExecutor(max_workers=self.pool.size + 16, thread_name_prefix="mcp-call")

    def contracts(self) -> list[dict[str, Any]]:
        return [spec.contract() for spec in self.specs.values()]

    def check(self, name: str, args: Any) -> tuple[ToolErrorCode, str] | None:
        """None when the call may run, else (error code, message)."""
        if name not in self.specs:
            return "unknown_tool", f"no tool named {str(name)[:80]!r} is enabled"
        if name in self.broken:
            return "input_schema_invalid", f"the input schema of {name} is invalid: {self.broken[name]}"
        if not isinstance(args, dict):
            return "wrong_arguments", "arguments must be a JSON object"
        try:
            error = best_match(self.validators[name].iter_errors(args))
        except RecursionError:
            return "wrong_arguments", "the arguments are nested too deeply"
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path)
            message = error.message if len(repr(error.instance)) <= 120 else \
                f"the value fails {error.validator} = {error.validator_value!r}"
            return "wrong_arguments", f"{where + ': ' if where else ''}{message[:300]}"
        return None

    def invoke(self, name: str, args: Any, timeout_s: float | None = None, via: str = "direct") -> Outcome:
        """Validate and run one call (blocking). Never raises for bad input: the outcome carries the error."""
        started = time.perf_counter()
        spec = self.specs.get(name)
        problem = self.check(name, args)
        if problem is not None:
            raw = RawOutcome(code=problem[0], message=problem[1])
        else:
            bound = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
            raw = self.pool.call(name, args, max(bound, 0.001))
        duration = time.perf_counter() - started
        outcome_label = raw.code or "ok"
        TOOL_CALLS.labels(name if spec else "unknown", outcome_label, via).inc()
        if spec:
            TOOL_SECONDS.labels(name).observe(duration)
        return Outcome(tool=name, version=spec.version if spec else None,
                       schema_sha256=spec.schema_sha256 if spec else None, text=raw.text, result=raw.result,
                       code=raw.code, message=raw.message, duration_ms=duration * 1000)

    async def disabled(self) -> frozenset[str]:
        return await self.switches.names() if self.switches is not None else frozenset()

    async def enabled_specs(self) -> list[ToolSpec]:
        """The tools served now: the configured ones the operator has not switched off."""
        off = await self.disabled()
        return [spec for name, spec in self.specs.items() if name not in off]

    async def ainvoke(self, name: str, args: Any, timeout_s: float | None = None, via: str = "direct") -> Outcome:
        if name in self.specs and name in await self.disabled():
            TOOL_CALLS.labels(name, "tool_disabled", via).inc()
            spec = self.specs[name]
            return Outcome(tool=name, version=spec.version, schema_sha256=spec.schema_sha256, code="tool_disabled",
                           message=f"the operator has switched off tool {name}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.invoke, name, args, timeout_s, via)

    def close(self) -> None:
        self.pool.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
