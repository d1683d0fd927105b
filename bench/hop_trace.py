"""One trivial request's journey, hop by hop, from its own messages (issue 52, item 3): where its wait goes.

    python -m bench.hop_trace [--samples 5] [--no-learning] [--no-record] [--fleet-env KEY=VALUE ...]

Starts the fleet in a fresh namespace (bench.token_stages.run: the zero-latency model, nothing else in the
namespace), sends one unrecorded trivial request, then SAMPLES more one at a time with a pause between them, and
reads their messages back. Every message says when the stage run that published it started (`started_at`: its input
consumed and decoded), when it was built (`created_at`) and when the broker appended it (the record's timestamp);
with the client's send and receive times that is a timeline per request (ms from the send):

  edge in      request created_at - sent                (HTTP, auth, metering, the request built)
  append       record time - created_at                 (serialised, handed to the producer, acknowledged)
  delivery     next stage's started_at - record time    (the broker's fetch, the consumer's queue, decoding)
  handler      created_at - started_at                  (the stage's own work incl. its model call)
  edge out     received - answer record time            (the edge's fetch of the answer, the HTTP response)

the segments between them (SEGMENTS: edge in, each hop's delivery and handler, edge out; their medians over the
samples), and each message's overhead ledger (`Envelope.cost`: the publishing run's handler time, model time and
CPU), which tells a run's own work from its waiting. Spans on one machine's clock; on a busy machine each figure
moves with the load (the shape, not the sizes). Output: bench/results/latest-hops.json and the timelines on stdout."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import loadgen, token_stages
from bench.config import REPO
from bench.loadgen import Target
from bench.scenarios import FLEET_MODEL, PATHS

ORDER = ("requests", "plans", "tasks.expert", "results", "answers")


def _ms(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() * 1000 if stamp else None


def timeline(sent_ms: float, received_ms: float, messages: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """(event, ms from the send) in order: each pipeline message's run start, build and append."""
    events: list[tuple[str, float]] = [("sent", 0.0)]
    for topic in ORDER:
        for m in (m for m in messages if m["_topic"].endswith(f".{topic}.v1")):
            for what, at in (("started", _ms(m.get("started_at"))), ("created", _ms(m.get("created_at"))),
                             ("appended", float(m["_ts"]))):
                if at is not None:
                    events.append((f"{topic} {what}", round(at - sent_ms, 2)))
    events.append(("received", round(received_ms - sent_ms, 2)))
    return sorted(events, key=lambda e: e[1])


# The trivial path's wait cut into consecutive segments (issue 52 item 3: where each ms goes): (name, from, to).
SEGMENTS = (
    ("edge in (HTTP, auth, limits, request built)", "sent", "requests created"),
    ("request append", "requests created", "requests appended"),
    ("planner (delivery + handler + append)", "requests appended", "tasks.expert appended"),
    ("expert delivery", "tasks.expert appended", "results started"),
    ("expert handler", "results started", "results created"),
    ("result append", "results created", "results appended"),
    ("merger delivery", "results appended", "answers started"),
    ("merger handler + answer append", "answers started", "answers appended"),
    ("edge out (answer fetched, settled, delivered, HTTP reply)", "answers appended", "received"),
)


def segments(timeline: list[tuple[str, float]]) -> dict[str, float]:
    """One request's wait by segment (SEGMENTS; ms): consecutive, so they add up to its latency."""
    at = dict(timeline)
    return {name: round(at[end] - at[start], 2) for name, start, end in SEGMENTS if start in at and end in at}


def medians(requests: list[dict[str, Any]]) -> dict[str, float]:
    """Each segment's median over the requests (the ones that have it)."""
    names = [name for name, _, _ in SEGMENTS]
    return {name: round(statistics.median(found), 2) for name in names
            if (found := [r["segments"][name] for r in requests if name in r["segments"]])}


def costs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each pipeline message's overhead ledger (Envelope.cost: the publishing run's handler wall time, its model
    calls' time and its CPU so far): on a busy machine the CPU tells the run's own work from its waiting."""
    return [{"topic": m["_topic"].split(".", 1)[-1], **{k: (m.get("cost") or {}).get(k) for k in
                                                         ("stage", "handler_ms", "model_ms", "cpu_ms")}}
            for topic in ORDER for m in messages if m["_topic"].endswith(f".{topic}.v1") and m.get("cost")]


async def drive(args: argparse.Namespace, eps: dict[str, str], namespace: str, llm_url: str, fleet: Any,
                token: str) -> dict[str, Any]:
    target = Target("trivial", f"{fleet['gateway'].url}/v1", FLEET_MODEL, token, PATHS["trivial"].check,
                    PATHS["trivial"].question)
    out = []
    async with loadgen.session(2) as http:
        await loadgen.one(http, target, stream=False)  # warm: connections, the router, the first embedding
        sent = []
        for _ in range(args.samples):
            await asyncio.sleep(0.5)
            start = time.time() * 1000
            record = await loadgen.one(http, target, stream=False)
            if record.error or not record.response_id:
                raise SystemExit(f"trivial: {record.error or 'no response id'}")
            sent.append((record.response_id, start, start + record.latency_s * 1000))
        messages = await token_stages.read_messages(eps["kafka"], namespace, {rid for rid, _, _ in sent})
        for rid, start, end in sent:
            events = timeline(start, end, messages[rid])
            out.append({"response_id": rid, "latency_ms": round(end - start, 2), "timeline": events,
                        "segments": segments(events), "costs": costs(messages[rid])})
    return {"trivial": out, "trivial_medians": medians(out)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hop_trace", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--learning", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--fleet-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest-hops.json")
    args = parser.parse_args(argv)
    args.argv, args.module, args.prefix = list(argv or []), "bench.hop_trace", "hop"
    result = token_stages.run(args, drive)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("\nmedian ms by segment over the samples (the same machine's load moves every figure):")
    for name, ms in result["paths"]["trivial_medians"].items():
        print(f"  {ms:8.2f}  {name}")
    for request in result["paths"]["trivial"]:
        print(f"\n{request['response_id']}: {request['latency_ms']} ms")
        for event, at in request["timeline"]:
            print(f"  {at:8.2f}  {event}")
        for cost in request["costs"]:
            print(f"  ledger {cost['topic']}: {cost['stage']} handler {cost['handler_ms']} ms, model "
                  f"{cost['model_ms']} ms, CPU {cost['cpu_ms']} ms")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
