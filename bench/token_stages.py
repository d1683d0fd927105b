"""Tokens per stage, per template and per part of the prompt, per request (issue 52, item 4), from the record.

    python -m bench.token_stages [--samples 3] [--paths full,trivial] [--no-learning] [--no-record] [--out FILE]
                                 [--calls FILE] [--answer-words N]

Starts the zero-latency inference server (its call log on) and the fleet in a fresh topic namespace as `make bench`
does (with the record and learning unless told otherwise), sends SAMPLES requests of each path (the bench's own
questions), waits until the record and learning have caught up (bench.settle), sends the same questions straight to
the model, then reads the namespace's messages back: every model call of a request is in the record with its stage,
template and tokens (bench.token_split), and split by part from the server's view of the same call. Counts, not
timings: the same on a busy machine. Beside them, each stage's handler, model and CPU time per request as the record
holds them (`Envelope.cost`; the CPU is the run's own, so it means something on a busy machine too).
Writes JSON (default bench/results/latest-tokens.json) and prints the tables.
Run it inside a private network namespace on a shared machine (`unshare -n`, as the tests run)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from bench import kafka_trace, loadgen, procs, settle, token_split
from bench.config import REPO
from bench.infra import connect
from bench.loadgen import Target
from bench.record import record_env
from bench.runner import _delete_topics, _key, fleet_env
from bench.scenarios import EXPERT_MODEL, FLEET_MODEL, PATHS, script
from moe_core.contracts import Topics
from moe_core.runtime.bus import ensure_topics
from moe_core.runtime.kafka_clients import client_kwargs

log = logging.getLogger("bench.tokens")


async def read_messages(bootstrap: str, namespace: str, rids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """response_id -> every message of the namespace's topics that belongs to it (by its envelope)."""
    partitions = await kafka_trace._partitions(bootstrap, Topics.for_namespace(namespace).all())
    out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in rids}
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        todo = {tp for tp, offset in end.items() if offset > 0}
        while todo:
            for records in (await consumer.getmany(*todo, timeout_ms=1000, max_records=5000)).values():
                for record in records:
                    value = _json(record.value)
                    if value.get("response_id") in out:
                        out[value["response_id"]].append(value | {"_topic": record.topic, "_ts": record.timestamp})
            todo = {tp for tp in todo if await consumer.position(tp) < end[tp]}
    finally:
        await consumer.stop()
    return out


def _answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """What the request's Answer says of its path (which calls it made, which results it used)."""
    answers = [m for m in messages if m.get("_topic", "").endswith(".answers.v1")]
    keys = ("model_calls", "experts_used", "finish_reason", "cache_hit", "error", "missing", "reasoning")
    return {k: answers[-1].get(k) for k in keys} | {
        "results": [(m.get("category"), m.get("confidence"), m.get("error")) for m in messages
                    if m.get("_topic", "").endswith(".results.v1")]} if answers else {}


def _json(raw: bytes | None) -> dict[str, Any]:
    try:
        value = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


async def _server(http: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    method = http.post if body is not None else http.get
    async with method(f"{url}{path}", json=body) as resp:
        return await resp.json()


async def measure_path(http: aiohttp.ClientSession, target: Target, direct: Target, llm_url: str, samples: int,
                       settled: Any) -> dict[str, Any]:
    """SAMPLES requests through the path (the server keeping their calls), then the same questions straight to the
    model: the questions, the response ids, the calls the server saw, the direct calls' tokens."""
    questions = [target.next_question() for _ in range(samples)]
    rids = []
    await _server(http, llm_url, "/_calls", {"keep": True})
    for question in questions:
        record = await loadgen.one(http, target, stream=False, question=question)
        if record.error or not record.response_id:
            raise SystemExit(f"{target.name}: {record.error or 'no response id'}")
        rids.append(record.response_id)
    await settled()  # the record's and learning's work for these answers
    seen = (await _server(http, llm_url, "/_calls", {"keep": False}))["calls"]
    before = await _server(http, llm_url, "/_stats")
    for question in questions:
        await loadgen.one(http, direct, stream=False, question=question)
    after = await _server(http, llm_url, "/_stats")
    direct_tokens = sum(after["total"][k] - before["total"][k] for k in ("prompt_tokens", "completion_tokens"))
    return {"questions": questions, "rids": rids, "seen": seen, "direct": direct_tokens / samples}


async def topics_ready(bootstrap: str, namespace: str, partitions: int, timeout_s: float = 300) -> None:
    """The namespace's topics created before the fleet starts, and their partitions in the broker's metadata: on a
    busy shared broker a service's consumer gave up waiting for a topic another service had just created (the
    gateway exited: `deltas.v1 not found in cluster metadata`). The services set their retention afterwards."""
    names = Topics.for_namespace(namespace).all()
    await ensure_topics(bootstrap, names, partitions)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while {tp.topic for tp in await kafka_trace._partitions(bootstrap, names)} != set(names):
        if loop.time() > end:
            raise SystemExit(f"the namespace's topics are not in the broker's metadata after {timeout_s:.0f} s")
        await asyncio.sleep(1)


def _ratio(tokens: float, direct: float) -> float | None:
    return round(tokens / direct, 2) if direct else None


async def drive(args: argparse.Namespace, eps: dict[str, str], namespace: str, llm_url: str, fleet: Any,
                token: str) -> dict[str, Any]:
    gateway = f"{fleet['gateway'].url}/v1"
    direct = Target("direct", f"{llm_url}/v1", EXPERT_MODEL, "none", PATHS["direct"].check, PATHS["direct"].question)
    result: dict[str, Any] = {}
    settler = settle.settler(eps["kafka"], list(fleet.services), namespace)
    if settler is None:
        raise SystemExit("no consumer behind the path to wait for (bench.settle)")
    async with loadgen.session(8) as http, settler:
        for path in args.paths:
            target = Target(path, gateway, FLEET_MODEL, token, PATHS[path].check, PATHS[path].question)
            await loadgen.one(http, target, stream=False)  # one unrecorded request: the fleet warm, the path open
            await settler.wait()
            got = await measure_path(http, target, direct, llm_url, args.samples, settler.wait)
            messages = await read_messages(eps["kafka"], namespace, set(got["rids"]))
            calls = [c for rid in got["rids"] for c in token_split.named_calls(messages[rid])]
            summary = token_split.summarise(token_split.join(calls, got["seen"], set(got["questions"])),
                                            len(got["rids"]))
            server = sum(c["prompt_tokens"] + c["completion_tokens"] for c in got["seen"]) / len(got["rids"])
            summary["per_request"] = {rid: {"calls": [(c["template"], c["prompt_tokens"] + c["completion_tokens"])
                                                      for c in token_split.named_calls(messages[rid])],
                                            "answer": _answer(messages[rid]),
                                            "stage_costs": token_split.stage_costs([messages[rid]])}
                                      for rid in got["rids"]}
            summary["stage_costs"] = token_split.stage_costs([messages[rid] for rid in got["rids"]])
            if args.calls:  # every call as the server saw it: the prompts' text, to read where the words go
                args.calls.with_suffix(f".{path}.json").write_text(json.dumps(got["seen"], indent=1) + "\n")
            summary |= {"server_tokens_per_request": round(server, 1), "direct_tokens_per_request": got["direct"],
                        "ratio": _ratio(summary["tokens_per_request"], got["direct"]),
                        "ratio_without_learning": _ratio(summary["without_learning_per_request"], got["direct"])}
            result[path] = summary
    return result


Drive = Callable[[argparse.Namespace, dict[str, str], str, str, Any, str], Coroutine[Any, Any, dict[str, Any]]]


def run(args: argparse.Namespace, drive: Drive = drive) -> dict[str, Any]:
    """Start the server and the fleet in a fresh namespace, `drive` them (args, endpoints, namespace, the server's
    URL, the fleet, an API key), stop and clean up."""
    eps = connect()
    namespace = f"{getattr(args, 'prefix', 'tok')}{uuid.uuid4().hex[:8]}"
    extra: tuple[str, ...] = ("graph-ingest", "gap-healer") if args.learning else ()
    extra += ("codex-lineage",) if args.record else ()
    started: list[procs.Proc] = []
    fleet, key_id = None, None
    with ExitStack() as stack:
        try:
            llm_url, llm = procs.start_llm_server(script(args.answer_words))
            started.append(llm)
            env = fleet_env(eps, namespace, llm_url, dict(kv.split("=", 1) for kv in args.fleet_env))
            if args.record:
                env = {**stack.enter_context(record_env(eps, namespace)), **env}
            asyncio.run(topics_ready(eps["kafka"], namespace, int(env.get("MOE_TOPIC_PARTITIONS", "6"))))
            fleet = procs.start_fleet(env, 1, extra)
            key_id, token = asyncio.run(_key(eps["postgres"], f"tenant-{namespace}"))
            result = asyncio.run(drive(args, eps, namespace, llm_url, fleet, token))
        finally:
            if fleet is not None:
                fleet.stop()
            for proc in started:
                proc.stop()
            if key_id:
                asyncio.run(_key(eps["postgres"], "", revoke=key_id))
            try:
                asyncio.run(_delete_topics(eps["kafka"], namespace))
            except KafkaError as exc:  # the counts were taken: a broker that went away meanwhile does not lose them
                log.warning("the namespace's topics were not deleted (%s): %s", exc, namespace)
    return {"command": f"python -m {args.module} " + " ".join(args.argv), "learning": args.learning,
            "record": args.record, "samples": args.samples, "answer_words": args.answer_words, "paths": result}


def table(result: dict[str, Any]) -> str:
    lines = []
    for path, s in result["paths"].items():
        lines += [f"\n{path}: {s['tokens_per_request']} tokens / request (the server counted "
                  f"{s['server_tokens_per_request']}), direct {s['direct_tokens_per_request']}: {s['ratio']}x; "
                  f"without learning's calls {s.get('without_learning_per_request')}: "
                  f"{s.get('ratio_without_learning')}x", "",
                  "| template (stage) | calls | prompt | completion | parts |", "|---|---|---|---|---|"]
        for name, row in s["by_template"].items():
            parts = ", ".join(f"{k} {v}" for k, v in row["parts"].items())
            lines.append(f"| {name} ({row['stage']}) | {row['calls']} | {row['prompt_tokens']} | "
                         f"{row['completion_tokens']} | {parts} |")
        lines.append("| **all** | | | | " + ", ".join(f"{k} {v}" for k, v in s["by_part"].items()) + " |")
        lines += ["", "| stage (the record's cost, per request) | handler ms | model ms | CPU ms |",
                  "|---|---|---|---|"]
        lines += [f"| {stage} | {c['handler_ms']} | {c['model_ms']} | {c['cpu_ms']} |"
                  for stage, c in s.get("stage_costs", {}).items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.token_stages", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--paths", default="full,trivial")
    parser.add_argument("--learning", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--answer-words", type=int, default=0,
                        help="the experts' and the judge's answers this many words longer (bench.scenarios.script)")
    parser.add_argument("--fleet-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest-tokens.json")
    parser.add_argument("--calls", type=Path, default=None, metavar="FILE",
                        help="also write every model call of each path as the server saw it (FILE.<path>.json)")
    args = parser.parse_args(argv)
    args.argv, args.paths, args.module = list(argv or []), [p for p in args.paths.split(",") if p], "bench.token_stages"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = run(args)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
