"""A rolled-back tenant's record continued under a new log (codex_lineage.cutover), on the real Postgres and timestamp
authority: after a restore behind the published checkpoint codex-lineage refuses the tenant's chain (ROLLED BACK);
the cut-over (signed, in the checkpoint file) names the stretch and a new origin; codex-lineage started again
checkpoints the tenant under that origin, the request recorded after the restore verifies, the published checkpoints
of the rolled-back stretch stay in the file untouched, and a second cut-over without a new rollback is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from codex_lineage.anchoring import anchoring_for
from codex_lineage.cutover import Refused, cut_over
from codex_lineage.settings import LineageSettings
from moe_audit_verify.format import canonical
from moe_audit_verify.published import read_published
from moe_audit_verify.segment import Trust
from moe_audit_verify.timestamps import TsaChain
from moe_audit_verify.witnessed import note_problem
from moe_core.audit.checkpoints import ChainBroken, checkpoint
from moe_core.audit.records import from_kafka, message_types
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.contracts import TaskResult, Topics, deadline_in

pytestmark = pytest.mark.infra
TOPICS = Topics.for_namespace("cutover")
SIGNER = Signer.ephemeral()


@pytest.fixture
async def store(infra: dict[str, str]) -> AsyncIterator[AuditStore]:
    audit = await AuditStore.connect(infra["postgres"], f"audit_c_{uuid.uuid4().hex[:10]}", signer=SIGNER)
    yield audit
    await audit.drop()
    await audit.close()


def _records(rid: str, first_offset: int, n: int) -> list[Any]:
    now = int(datetime.now(UTC).timestamp() * 1000)
    out = []
    for i in range(n):
        result = TaskResult(response_id=rid, tenant_id="acme", deadline_at=deadline_in(60), task_id=f"t{i}",
                            category="general", content=f"answer {i}")
        out.append(from_kafka(TOPICS.results, 0, first_offset + i, now + i, rid.encode(),
                              result.model_dump_json().encode(), {"x-moe-producer": "expert-worker"},
                              message_types(TOPICS)))
    return out


async def test_a_rolled_back_tenant_continues_under_a_new_log_and_the_fork_stays_published(
        store: AuditStore, tsa: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    settings = LineageSettings(audit_checkpoint_file=str(path), audit_tsa_url=tsa["url"], audit_tsa_chain=tsa["chain"])
    before, lost, after = (f"r-{uuid.uuid4().hex}" for _ in range(3))
    await store.append_many([(r, []) for r in _records(before, 0, 2)])
    assert (await checkpoint(store, "acme", anchoring_for(settings, None, SIGNER))).size == 2  # type: ignore[union-attr]
    await store.append_many([(r, []) for r in _records(lost, 2, 2)])
    assert (await checkpoint(store, "acme", anchoring_for(settings, None, SIGNER))).size == 4  # type: ignore[union-attr]
    # the restore: the database put back to the first checkpoint (the second one published and in the file)
    await store.pool.execute("DELETE FROM audit_log WHERE tenant_id = 'acme' AND seq > 2")
    await store.pool.execute("DELETE FROM audit_checkpoints WHERE tenant_id = 'acme' AND size > 2")
    store = AuditStore(store.pool, store.schema, SIGNER)  # restarted: nothing remembered of what it wrote
    await store.append_many([(r, []) for r in _records(after, 10, 3)])  # recorded after the restore: seq 3..5
    with pytest.raises(ChainBroken, match=r"ROLLED BACK: seq 3\.\.4 of tenant acme were witnessed \(size 4\)"):
        await checkpoint(store, "acme", anchoring_for(settings, None, SIGNER))
    published = path.read_text()

    body = await cut_over(store, settings, SIGNER, "acme", "restored from the backup of 12:00 (incident 7)")
    assert (body["rolled_back"]["from_seq"], body["rolled_back"]["to_seq"]) == (3, 4)
    assert (body["from_origin"], body["origin"]) == ("moe-fleet/audit/acme", "moe-fleet/audit/log-2/acme")
    line = json.loads(path.read_text().splitlines()[-1])
    assert line["cutover"] == body and SIGNER.public.verifies(canonical(body).encode(), line["signature"])
    assert path.read_text().startswith(published)  # appended: the rolled-back stretch's checkpoints stay as they were
    with pytest.raises(Refused, match="not rolled back"):  # the cut-over is made once per rollback
        await cut_over(store, settings, SIGNER, "acme", "again")

    restarted = anchoring_for(settings, None, SIGNER)  # codex-lineage started again: it reads the cut-over
    assert restarted.origin("acme") == "moe-fleet/audit/log-2/acme" and "acme" not in restarted.published
    made = await checkpoint(store, "acme", restarted)
    assert made is not None and made.size == 5 and made.body["origin"] == "moe-fleet/audit/log-2/acme"
    trust = Trust(SIGNER.public, TsaChain(Path(tsa["chain"]).read_bytes()))
    # its note is signed by the new log's note key (named moe-fleet/audit/log-2), as the offline verifier reads it
    assert note_problem(made, trust, None, "acme") is None
    assert restarted.note_key_of("acme").name == "moe-fleet/audit/log-2"
    assert (await store.verify(after, trust))["verified"] is True
    assert (await store.verify(before, trust))["verified"] is True  # what the restore kept verifies as before
    found, unreadable = read_published(path, "acme")  # the verifier reads the file: the cut-over is no finding
    assert unreadable == [] and sorted(cp.size for cp in found.values()) == [2, 4, 5]
