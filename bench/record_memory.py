"""codex-lineage's record path alone, in this process (issue 52): full requests' messages (bench.audit_costs, 12 records
each), each signed by its sender's producer key, fed to codex_lineage.recorder.Recorder.record_batch in consumer
batches, into a fresh audit schema on the local Postgres, with a checkpoint of every tenant (checkpoint_all, no TSA)
every CHECKPOINT_EVERY requests as codex-lineage's loop would. No Kafka: the records are built here.

  python -m bench.record_memory mem REQUESTS [EVERY [BATCH [TRACE]]]   (default 3000 500 60 0)
  python -m bench.record_memory cpu REQUESTS [BATCH]                    (default 300 60)

mem: every EVERY requests, this process's RSS and RssAnon (MB), Python's traced memory (TRACE=1: tracemalloc, and the
sites that grew most since the first sample), the signatures the Signer remembers and gc's tracked objects.
cpu: this process's CPU per record in Recorder.record_batch (the records and signatures made before the clock
starts; Postgres's CPU not counted), the producer checks, the json.dumps calls (canonical content; the rows' payload
and event JSON come from encoders made once, not counted) and the cyclic GC's CPU.
Before/after: an older tree first on PYTHONPATH (see bench.audit_costs)."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import tracemalloc
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bench.audit_costs import request_messages
from bench.infra import connect

CHECKPOINT_EVERY = 60  # requests between checkpoints (codex-lineage checkpoints every 60 s)
SENDERS = ("gateway", "planner", "graph-rag", "expert-worker", "merger", "critic", "guardrail")


@dataclass
class Raw:
    """A Kafka ConsumerRecord as Recorder reads it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def memory() -> tuple[float, float]:
    """(RSS, RssAnon) of this process, MB."""
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) / 1e3, int(fields["RssAnon"].split()[0]) / 1e3


class Feed:
    """Signed records of full requests, one tenant; each sender signs with its own producer key."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from moe_core.audit.records import message_types
        from moe_core.contracts import TOPIC_MESSAGES, Topics
        from moe_core.runtime.producer_signing import Producer, ProducerSigner, ProducerVerifier

        self.topics = Topics.for_namespace(f"rm{uuid.uuid4().hex[:6]}")
        self.types = message_types(self.topics)
        keys = {name: Ed25519PrivateKey.generate() for name in SENDERS}
        self.signers = {name: ProducerSigner(name, key) for name, key in keys.items()}
        kinds = tuple(TOPIC_MESSAGES)
        self.verifier = ProducerVerifier({n: Producer(n, k.public_key(), kinds) for n, k in keys.items()},
                                         self.topics)
        self.offsets: dict[str, int] = {}

    def requests(self, n: int, tenant: str = "bench") -> list[Raw]:
        from moe_core.contracts import headers

        out: list[Raw] = []
        for _ in range(n):
            rid = f"r-{uuid.uuid4().hex}"
            for attr, producer, payload in request_messages(rid, tenant):
                topic = getattr(self.topics, attr)
                self.offsets[topic] = offset = self.offsets.get(topic, -1) + 1
                value, key, kind = json.dumps(payload).encode(), rid.encode(), self.types[topic]
                hdrs = {headers.RESPONSE_ID: rid, headers.MESSAGE_TYPE: kind, headers.PRODUCER: producer,
                        **self.signers[producer].headers(topic, key, value, kind)}
                out.append(Raw(topic, 0, offset, int(time.time() * 1000), key, value,
                               [(k, v.encode()) for k, v in hdrs.items()]))
        return out


async def _recorder(feed: Feed) -> tuple[Any, Any, Any]:
    from codex_lineage.lineage import Datasets, Lineage
    from codex_lineage.recorder import Recorder
    from moe_core.audit.checkpoints import Anchoring
    from moe_core.audit.signer import Signer
    from moe_core.audit.store import AuditStore

    signer = Signer.ephemeral()
    store = await AuditStore.connect(connect(["postgres"])["postgres"], f"audit_rm_{uuid.uuid4().hex[:8]}",
                                     signer=signer)
    lineage = Lineage(feed.topics, "moe", Datasets("kafka://k:9092", "neo4j://n:7687", "chroma://c:8000"))
    return Recorder(feed.topics, store, lineage, None, feed.verifier), store, Anchoring(signer, None)


async def mem(requests: int, every: int, batch: int, trace: int) -> None:
    from moe_core.audit.checkpoints import checkpoint_all

    feed = Feed()
    recorder, store, anchoring = await _recorder(feed)
    if trace:
        tracemalloc.start(4)
    first: Any = None
    try:
        done = 0
        while done < requests:
            for _ in range(0, every, CHECKPOINT_EVERY):
                raws = feed.requests(CHECKPOINT_EVERY)
                for i in range(0, len(raws), batch):
                    await recorder.record_batch(raws[i:i + batch])
                await checkpoint_all(store, anchoring, timedelta(hours=1))
                done += CHECKPOINT_EVERY
            del raws
            gc.collect()
            rss, anon = memory()
            line = (f"{done:6d} requests: rss {rss:7.1f} MB, anon {anon:7.1f} MB, remembered "
                    f"{len(anchoring.signer._stored):6d}, gc objects {len(gc.get_objects()):8d}")
            if trace:
                snap = tracemalloc.take_snapshot()
                line += f", traced {tracemalloc.get_traced_memory()[0] / 1e6:6.1f} MB"
                if first is None:
                    first = snap
                else:
                    for stat in snap.compare_to(first, "traceback")[:3]:
                        line += f"\n    {stat.size_diff / 1e3:+9.1f} kB {stat.count_diff:+7d}  " + " <- ".join(
                            f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in stat.traceback)
            print(line, flush=True)
    finally:
        await store.drop()
        await store.close()


class Counts:
    """While entered: the producer checks and json.dumps calls made, and the CPU seconds the cyclic GC took."""

    def __init__(self) -> None:
        self.checks = self.dumps = 0
        self.gc_s = 0.0
        self._gc_started = 0.0

    def __enter__(self) -> Counts:
        from moe_core.runtime.producer_signing import ProducerVerifier

        self._real = json.dumps, ProducerVerifier.check
        real_dumps, real_check = self._real

        def dumps(*args: Any, **kwargs: Any) -> str:
            self.dumps += 1
            return real_dumps(*args, **kwargs)

        def check(verifier: Any, *args: Any) -> str:
            self.checks += 1
            return real_check(verifier, *args)

        json.dumps, ProducerVerifier.check = dumps, check  # type: ignore[assignment,method-assign]
        gc.callbacks.append(self._gc)
        return self

    def __exit__(self, *exc: object) -> None:
        from moe_core.runtime.producer_signing import ProducerVerifier

        json.dumps, ProducerVerifier.check = self._real  # type: ignore[method-assign]
        gc.callbacks.remove(self._gc)

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.process_time()
        else:
            self.gc_s += time.process_time() - self._gc_started


async def cpu(requests: int, batch: int) -> None:
    feed = Feed()
    recorder, store, _ = await _recorder(feed)
    try:
        for i, raws in enumerate((feed.requests(20), feed.requests(requests))):
            with Counts() as counts:
                spent = time.process_time()
                for j in range(0, len(raws), batch):
                    await recorder.record_batch(raws[j:j + batch])
                spent = time.process_time() - spent
            if i:
                n = len(raws)
                print(f"{n} records: {spent / n * 1e6:.0f} us CPU per record here (gc {counts.gc_s / n * 1e6:.0f}), "
                      f"{counts.checks / n:.2f} producer checks and {counts.dumps / n:.2f} json.dumps per record")
    finally:
        await store.drop()
        await store.close()


if __name__ == "__main__":
    mode, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    if mode == "mem":
        asyncio.run(mem(*args, *(3000, 500, 60, 0)[len(args):]))
    else:
        asyncio.run(cpu(*args, *(300, 60)[len(args):]))
