"""The planner's memory against the number of requests (issue 52, item 6): the planner app on the real Kafka, Redis,
Chroma and OPA (`make up`'s), requests one at a time in the bench's mix (distinct full and trivial questions as
bench.scenarios words them, and repeats of its cache question: hits), each followed by the merger's answer, so the
cache entries are stored as in the fleet. After a warm-up, the process's resident memory (smaps_rollup: Rss, its
Anonymous part, and the resident pages of the static embedding table) at each checkpoint, with the planner's bounded
structures' sizes (the cache index, the recent-vector cache) and the live asyncio tasks and gc objects. The harness's
own producer and reader run in the same process (the reader's records and the scripted model's calls are cleared
after each batch). Not a test:
`.venv/bin/python -m tests.infra.planner.planner_memory 100 200 400 800 [--concurrency 32]` inside the test
namespace."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tracemalloc
import uuid
from pathlib import Path

from bench.scenarios import cache_question, full_question, trivial_question
from moe_core.contracts import Answer, ChatMessage, ChatRequest, deadline_in
from tests.infra.planner.harness import Harness, running_planner
from tests.infra.planner.planner_profile import handled, until_handled
from tests.support.topic_reader import TopicReader, wait_until

PLAN = json.dumps({"tasks": [{"category": "general", "instruction": "answer"},
                             {"category": "technical_support", "instruction": "check"}]})
ANSWER = ("Leonardo da Vinci painted the Mona Lisa between about 1503 and 1519; it hangs in the Louvre in Paris, "
          "behind glass, and is one of the most visited paintings in the world.")
MIX = ("full", "trivial", "cache", "cache", "full", "trivial", "cache", "cache", "cache", "full")  # the bench's ~


def rollup() -> dict[str, float]:
    """Rss and Anonymous of this process in MB (smaps_rollup), and the static table's resident MB (smaps)."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    table, current = 0.0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0]:
            current = "/static-" in line and line.endswith(".npy")
        elif current and line.startswith("Rss:"):
            table += int(line.split()[1]) / 1024
    return {"rss": fields["Rss"], "anon": fields["Anonymous"], "table": table}


class Driver:
    def __init__(self, h: Harness, reader: TopicReader) -> None:
        self.h, self.reader, self.sent = h, reader, 0

    async def batch(self, concurrency: int) -> None:
        """`concurrency` requests at once (the bench's cells run 1, 8, 32 and 64), then the reader's records cleared
        (a late record of this batch is one of the next batch's: its response ids are new)."""
        await asyncio.gather(*(self.one() for _ in range(concurrency)))
        self.reader.records.clear()
        self.h.llm.state.scripted.clear_calls()  # the scripted model's record of its calls: not the planner's

    async def one(self) -> None:
        kind = MIX[self.sent % len(MIX)]
        self.sent += 1
        text = {"full": full_question, "trivial": trivial_question, "cache": cache_question}[kind](self.sent)
        if kind != "cache":
            text = f"{text} ({uuid.uuid4().hex[:6]})"  # distinct across runs too (the namespace's Redis is shared)
        t = self.h.topics
        request = ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id="t-mem", deadline_at=deadline_in(60),
                              mode="moe-orchestrator", messages=[ChatMessage(role="user", content=text)])
        await self.h.producer.send_and_wait(t.requests, request.model_dump_json().encode(),
                                            key=request.response_id.encode())
        rid = request.response_id
        reader = self.reader
        found = await wait_until(reader._changed, lambda: next((r for r in reader.records if r[1].get("response_id")
                                                                == rid), None), 120, f"no plan or answer for {rid}")
        if found[0] == t.answers:
            return  # a hit: the planner answered it
        plan = found[1]
        answers = handled(t.answers)
        answer = Answer(response_id=rid, tenant_id="t-mem", deadline_at=deadline_in(60), mode="moe-orchestrator",
                        content=ANSWER, cache_key=plan["cache_key"], question=plan["question"])
        await self.h.producer.send_and_wait(t.answers, answer.model_dump_json().encode(), key=rid.encode())
        await until_handled(t.answers, answers + 1)


def state(h: Harness) -> str:
    cache = h.planner.cache
    index = len(cache.index) if cache else 0
    vectors = h.planner.vectors
    recent = len(vectors.embedder._cache) if vectors is not None else -1
    return f"index {index:5d}  recent vectors {recent:5d}  tasks {len(asyncio.all_tasks()):4d}  " \
           f"gc objects {len(gc.get_objects()):8d}"


def grown(since: tracemalloc.Snapshot | None, top: int) -> None:
    """The Python allocation sites that grew most since `since` (with --trace)."""
    if since is None:
        return
    stacks = tracemalloc.get_traceback_limit() > 1  # --frames: the whole stack of each site
    for stat in tracemalloc.take_snapshot().compare_to(since, "traceback" if stacks else "lineno")[:top]:
        print(f"    {stat.size_diff / 1024:+9.1f} KB {stat.count_diff:+7d} blocks  {stat.traceback[0]}")
        for frame in stat.traceback[1:] if stacks else []:
            print(f"        {frame}")


async def run(checkpoints: list[int], warmup: int, concurrency: int, trace: int = 0, frames: int = 1) -> None:
    async with running_planner(PLAN) as h, TopicReader(h.kafka, h.topics.plans, h.topics.answers) as reader:
        driver = Driver(h, reader)
        while driver.sent < warmup:
            await driver.batch(concurrency)
        if trace:
            tracemalloc.start(frames)
        since = tracemalloc.take_snapshot() if trace else None
        base = rollup()
        print(f"after {warmup} warm-up requests: Rss {base['rss']:.1f} MB, anon {base['anon']:.1f}, "
              f"table {base['table']:.1f}; {state(h)}", flush=True)
        for n in checkpoints:
            while driver.sent - warmup < n:
                await driver.batch(concurrency)
            now = rollup()
            print(f"{n:5d} requests: Rss {now['rss']:.1f} MB ({now['rss'] - base['rss']:+.1f}), anon "
                  f"{now['anon']:.1f} ({now['anon'] - base['anon']:+.1f}), table {now['table']:.1f} "
                  f"({now['table'] - base['table']:+.1f}); {state(h)}", flush=True)
            grown(since, trace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoints", type=int, nargs="*", default=[100, 200, 400, 800])
    parser.add_argument("--warmup", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc: the N sites that grew most")
    parser.add_argument("--frames", type=int, default=1, help="with --trace: the stack's depth of each site")
    args = parser.parse_args()
    asyncio.run(run(args.checkpoints, args.warmup, args.concurrency, args.trace, args.frames))
