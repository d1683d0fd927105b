"""Run by tests/support/upgrade/make_fixture.py with the PREVIOUS release's code on the path (its worktree's libs/
and services/codex-lineage before this repository's): the record as that release writes it. Uses only that
release's own modules (moe_core.audit, moe_core.contracts) and its migrations (AuditStore.connect migrates).

    python old_release.py DSN SCHEMA TSA_URL TSA_CHAIN OUT

Writes into OUT: signing-key.pem (the release's throw-away audit key, kept across the upgrade as a deployment
keeps its key), checkpoints.jsonl (its published checkpoints), recorded.json (the request ids it recorded and
checkpointed) and messages.jsonl (messages of later requests, in its schema, still on the topics at the upgrade:
replayed into the new release's topics by the test)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from moe_audit_verify.timestamps import TsaChain
from moe_core.audit.checkpoints import Anchoring, checkpoint, file_outlet
from moe_core.audit.records import from_kafka, message_types
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.audit.tsa import TsaClient
from moe_core.contracts import ChatRequest, TaskResult, Topics, deadline_in

TENANT = "acme"
TOPICS = Topics.for_namespace("moe")


def messages(rid: str, first_offset: int) -> list[dict[str, object]]:
    """A request and its two expert results, as the release's producers publish them."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    request = ChatRequest(response_id=rid, tenant_id=TENANT, deadline_at=deadline_in(600), mode="moe-orchestrator",
                          messages=[{"role": "user", "content": f"question of {rid}"}])
    out = [{"topic": TOPICS.requests, "partition": 0, "offset": first_offset, "timestamp_ms": now, "key": rid,
            "value": request.model_dump_json(), "headers": {"x-moe-producer": "gateway"}}]
    for i in range(2):
        result = TaskResult(response_id=rid, tenant_id=TENANT, deadline_at=deadline_in(600), task_id=f"t{i}",
                            category="general", content=f"answer {i} of {rid}")
        out.append({"topic": TOPICS.results, "partition": 0, "offset": first_offset + i, "timestamp_ms": now + 1 + i,
                    "key": rid, "value": result.model_dump_json(), "headers": {"x-moe-producer": "expert-worker"}})
    return out


async def main(dsn: str, schema: str, tsa_url: str, tsa_chain: str, out: Path) -> None:
    import moe_core

    assert Path(moe_core.__file__).resolve().is_relative_to(Path.cwd().resolve()), moe_core.__file__  # the release's
    key = Ed25519PrivateKey.generate()
    (out / "signing-key.pem").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    signer = Signer(key)
    store = await AuditStore.connect(dsn, schema, signer=signer)
    types = message_types(TOPICS)
    anchoring = Anchoring(signer, TsaClient(tsa_url, TsaChain(Path(tsa_chain).read_bytes())),
                          [file_outlet(str(out / "checkpoints.jsonl"))])
    recorded = []
    for n in range(3):  # three requests recorded, a checkpoint after each of the first two and the last
        rid = f"old-{uuid.uuid4().hex[:12]}"
        items = [from_kafka(m["topic"], m["partition"], m["offset"], m["timestamp_ms"], m["key"].encode(),
                            m["value"].encode(), m["headers"], types) for m in messages(rid, 10 * n)]
        await store.append_many([(r, []) for r in items if r is not None])
        recorded.append(rid)
        assert await checkpoint(store, TENANT, anchoring) is not None
    (out / "recorded.json").write_text(json.dumps({"tenant": TENANT, "requests": recorded}, indent=1) + "\n")
    later = [m for n in range(2) for m in messages(f"old-{uuid.uuid4().hex[:12]}", 100 + 10 * n)]
    (out / "messages.jsonl").write_text("".join(json.dumps(m) + "\n" for m in later))
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5])))
