"""Witnessed checkpoints on the real Postgres, the real timestamp authority and the real witness (the
transparency-dev omniwitness, c2sp.org/tlog-witness): each checkpoint is a C2SP checkpoint note over the tenant log's
RFC 6962 root, cosigned by the witness only when consistent with the last one it cosigned; and each attack of the
insider trial (issue 47) is refused by codex-lineage at the next checkpoint, without anyone asking about a request:
the tail cut under codex-lineage's lock before the checkpoint, a head below the witnessed size, a tenant erased, a
checkpoint insert suppressed by a trigger."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from moe_audit_verify import merkle
from moe_audit_verify.note import Note
from moe_audit_verify.timestamps import TsaChain
from moe_core.audit.checkpoints import (
    Anchoring,
    ChainBroken,
    CheckpointNotStored,
    checkpoint,
    checkpoint_all,
    file_outlet,
    published_heads,
)
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.audit.tsa import TsaClient
from moe_core.audit.witness import WitnessClient
from tests.lineage.moe_core.audit.test_store import _records
from tests.support.witness import Witness, running_witness

pytestmark = pytest.mark.infra
SIGNER = Signer.ephemeral()
HOUR = timedelta(hours=1)
LOCKED_CUT = ("SELECT pg_advisory_xact_lock(hashtext('moe-audit-tenant' || chr(31) || 'acme')); "
              "DELETE FROM audit_log WHERE tenant_id = 'acme' AND seq > {seq}")


@pytest.fixture(scope="module")
def witness() -> Iterator[Witness]:
    with running_witness() as w:
        yield w


@pytest.fixture
async def store(infra: dict[str, str]) -> AsyncIterator[AuditStore]:
    audit = await AuditStore.connect(infra["postgres"], f"audit_w_{uuid.uuid4().hex[:10]}", signer=SIGNER)
    yield audit
    await audit.drop()
    await audit.close()


def anchoring(witness: Witness, tsa: dict[str, str], file: Path, log_name: str, *,
              published: bool = False) -> Anchoring:
    """codex-lineage's anchoring (a fresh process: nothing known of the witness; `published`: the checkpoint file
    read at start), its tenant log provisioned in the witness."""
    chain = TsaChain(Path(tsa["chain"]).read_bytes())
    made = Anchoring(SIGNER, TsaClient(tsa["url"], chain), [file_outlet(str(file))],
                     published_heads(str(file)) if published else {},
                     witness=WitnessClient(witness.url, witness.key), log_name=log_name)
    witness.provision(made.note_key.vkey, made.origin("acme"))
    return made


async def leaves(store: AuditStore) -> list[bytes]:
    rows = await store.pool.fetch("SELECT hash FROM audit_log WHERE tenant_id = 'acme' ORDER BY seq")
    return [merkle.entry_leaf(r["hash"]) for r in rows]


async def _fresh(store: AuditStore) -> AuditStore:
    """The same store as a restarted codex-lineage opens it: nothing remembered of what it wrote."""
    return AuditStore(store.pool, store.schema, SIGNER)


async def test_checkpoints_are_cosigned_notes_over_the_merkle_root_and_prove_the_log_grew(
        store: AuditStore, witness: Witness, tsa: dict[str, str], tmp_path: Path) -> None:
    name = f"moe-test-{uuid.uuid4().hex[:8]}/audit"
    anchor = anchoring(witness, tsa, tmp_path / "cp.jsonl", name)
    rid = f"r-{uuid.uuid4().hex}"
    await store.append_many([(r, []) for r in _records(rid, 0, 4)])
    first = await checkpoint(store, "acme", anchor)
    await store.append_many([(r, []) for r in _records(rid, 4, 3)])
    second = await checkpoint(store, "acme", anchor)
    assert first is not None and second is not None and (first.size, second.size) == (4, 7)
    tree = await leaves(store)
    for made in (first, second):
        assert made.note is not None
        note = Note.parse(made.note)
        assert note.signed_by(anchor.note_key) and note.cosigned_at(witness.key) is not None
        origin, size, root = note.checkpoint()
        assert (origin, size, root) == (f"{name}/acme", made.size, merkle.root(tree[:made.size]))
        assert made.body["tree_root"] == base64.b64encode(root).decode()  # the JSON checkpoint binds the same root
    old, new = Note.parse(first.note or "").checkpoint()[2], Note.parse(second.note or "").checkpoint()[2]
    merkle.verify_consistency(4, 7, old, new, merkle.consistency_proof(tree, 4))
    merkle.verify_inclusion(tree[1], 1, 7, merkle.inclusion_proof(tree, 1), new)
    stored = await store.pool.fetchval("SELECT note FROM audit_checkpoints WHERE size = 7")
    assert stored == second.note
    published = [json.loads(line) for line in (tmp_path / "cp.jsonl").read_text().splitlines()]
    assert [p["note"] for p in published] == [first.note, second.note]


async def test_the_tail_cut_under_codex_lineages_lock_before_the_checkpoint_is_refused(
        store: AuditStore, witness: Witness, tsa: dict[str, str], tmp_path: Path) -> None:
    """The trial's cut: a request answered, its entries and everything after them deleted under codex-lineage's
    own lock before the next checkpoint; the next request takes their seqs. The witness would cosign that (the cut
    entries were never witnessed); codex-lineage knows the head it wrote and refuses."""
    anchor = anchoring(witness, tsa, tmp_path / "cp.jsonl", f"moe-test-{uuid.uuid4().hex[:8]}/audit")
    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 0, 3)])
    assert await checkpoint(store, "acme", anchor) is not None
    victim = f"r-{uuid.uuid4().hex}"
    await store.append_many([(r, []) for r in _records(victim, 3, 4)])  # seqs 4..7, not yet checkpointed
    await store.pool.execute(LOCKED_CUT.format(seq=3))
    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 7, 6)])  # takes seqs 4..9
    made, refused = await checkpoint_all(store, anchor, HOUR)
    assert made == []
    assert refused == ["tenant acme: codex-lineage wrote entries up to seq 7, then found the chain's head at seq 3: "
                       "entries were deleted from the database"]
    assert len((tmp_path / "cp.jsonl").read_text().splitlines()) == 1  # nothing signed over the cut


async def test_a_head_below_the_witnessed_size_is_refused_by_a_restarted_codex_lineage(
        store: AuditStore, witness: Witness, tsa: dict[str, str], tmp_path: Path) -> None:
    """Everything codex-lineage itself keeps is lost (a restart, the checkpoint file gone too): the database cut back
    below a witnessed checkpoint, its checkpoint rows deleted; the witness still holds the size, and a history
    re-grown over the cut is not consistent with what it cosigned."""
    name = f"moe-test-{uuid.uuid4().hex[:8]}/audit"
    anchor = anchoring(witness, tsa, tmp_path / "cp.jsonl", name)
    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 0, 6)])
    assert await checkpoint(store, "acme", anchor) is not None
    await store.pool.execute(LOCKED_CUT.format(seq=2) + "; DELETE FROM audit_checkpoints WHERE tenant_id = 'acme'")
    restarted = await _fresh(store)
    forgetful = anchoring(witness, tsa, tmp_path / "none.jsonl", name)
    with pytest.raises(ChainBroken, match=r"the witness cosigned size 6 of .*, but the stored chain's head is 2"):
        await checkpoint(restarted, "acme", forgetful)
    await restarted.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 6, 5)])  # seqs 3..7 anew
    with pytest.raises(ChainBroken, match=r"the witness refused size 7 of .*: it is not consistent with size 6"):
        await checkpoint(restarted, "acme", anchoring(witness, tsa, tmp_path / "none.jsonl", name))


async def test_an_erased_tenant_is_refused_not_nothing_to_do(store: AuditStore, witness: Witness,
                                                              tsa: dict[str, str], tmp_path: Path) -> None:
    name = f"moe-test-{uuid.uuid4().hex[:8]}/audit"
    anchor = anchoring(witness, tsa, tmp_path / "cp.jsonl", name)
    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 0, 3)])
    assert await checkpoint(store, "acme", anchor) is not None
    await store.pool.execute("DELETE FROM audit_log WHERE tenant_id = 'acme'; "
                             "DELETE FROM audit_checkpoints WHERE tenant_id = 'acme'")
    for running, anchors in ((store, anchor),  # the running codex-lineage, and one restarted with the file
                             (await _fresh(store), anchoring(witness, tsa, tmp_path / "cp.jsonl", name,
                                                             published=True))):
        made, refused = await checkpoint_all(running, anchors, HOUR)
        assert made == [] and len(refused) == 1
        assert refused[0].startswith("tenant acme: its chain is gone from the database, but checkpoint of ")
        assert refused[0].endswith("(size 3) was published and witnessed: the tenant's record was erased")


async def test_a_checkpoint_insert_suppressed_by_a_trigger_is_an_error_and_still_published(
        store: AuditStore, witness: Witness, tsa: dict[str, str], tmp_path: Path) -> None:
    anchor = anchoring(witness, tsa, tmp_path / "cp.jsonl", f"moe-test-{uuid.uuid4().hex[:8]}/audit")
    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 0, 3)])
    s = store.s
    await store.pool.execute(
        f"CREATE FUNCTION {s}.swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; "
        f"CREATE TRIGGER swallow BEFORE INSERT ON {s}.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION {s}.swallow()")
    with pytest.raises(CheckpointNotStored, match=r"size 3\) was published but the database did not store it"):
        await checkpoint(store, "acme", anchor)
    assert [json.loads(line)["checkpoint"]["size"] for line in (tmp_path / "cp.jsonl").read_text().splitlines()] == [3]
    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 3, 2)])
    made, refused = await checkpoint_all(store, anchor, HOUR)
    assert made == [] and len(refused) == 1 and "is no longer in the database" in refused[0]


async def test_the_loop_logs_counts_and_keeps_refusing(store: AuditStore, witness: Witness, tsa: dict[str, str],
                                                       tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """codex-lineage's own loop at a short interval: the erased tenant is named in its log at every interval and
    counted in moe_audit_checkpoints_total{outcome="refused"} (the alert MoEAuditCheckpointRefused)."""
    from codex_lineage.anchoring import checkpoint_loop
    from codex_lineage.settings import LineageSettings
    from moe_core.runtime.observability.metrics import AUDIT_CHECKPOINTS

    anchor = anchoring(witness, tsa, tmp_path / "cp.jsonl", f"moe-test-{uuid.uuid4().hex[:8]}/audit")
    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 0, 2)])
    assert await checkpoint(store, "acme", anchor) is not None
    await store.pool.execute("DELETE FROM audit_log WHERE tenant_id = 'acme'")
    before = AUDIT_CHECKPOINTS.labels("refused")._value.get()
    loop = asyncio.create_task(checkpoint_loop(LineageSettings(audit_checkpoint_interval_s=0.2), store, anchor))
    try:
        while AUDIT_CHECKPOINTS.labels("refused")._value.get() < before + 2:
            await asyncio.sleep(0.1)
    finally:
        loop.cancel()
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("REFUSED to checkpoint")]
    assert len(refusals) >= 2 and all("the tenant's record was erased" in r for r in refusals)


async def test_a_period_and_a_request_verify_offline_with_the_auditors_anchors_only(
        store: AuditStore, witness: Witness, tsa: dict[str, str], tmp_path: Path, infra: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """The export of a period (its checkpoints' Merkle roots recomputed from its entries, a consistency proof from
    its first checkpoint to its last) and one request's inclusion proofs, checked by the standalone verifier with
    codex-lineage's public key, the TSA root and the witness key; without any of them it says UNANCHORED."""
    from fleetlib.witness import keypair

    from codex_lineage.export import export_period
    from codex_lineage.proof_cmd import run_proof
    from codex_lineage.settings import LineageSettings
    from moe_audit_verify import cli

    anchor = anchoring(witness, tsa, tmp_path / "cp.jsonl", f"moe-test-{uuid.uuid4().hex[:8]}/audit")
    since = await store.pool.fetchval("SELECT clock_timestamp()")
    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 0, 3)])
    assert await checkpoint(store, "acme", anchor) is not None
    rid = f"r-{uuid.uuid4().hex}"
    await store.append_many([(r, []) for r in _records(rid, 3, 4)])
    until = await store.pool.fetchval("SELECT clock_timestamp()")
    assert await checkpoint(store, "acme", anchor) is not None  # made after `until`: it closes the period
    pem = tmp_path / "audit-public-key.pem"
    pem.write_bytes(SIGNER.public.pem())
    settings = LineageSettings(postgres_dsn=infra["postgres"], audit_schema=store.schema, audit_public_key=str(pem),
                               audit_tsa_chain=tsa["chain"], audit_witness_key=str(witness.vkey_file))
    out = tmp_path / "export"
    assert await export_period(settings, "acme", since, until, out) == 0
    anchors = ["--public-key", str(pem), "--tsa-chain", tsa["chain"], "--witness-key", str(witness.vkey_file)]
    capsys.readouterr()
    assert cli.main([str(out), *anchors]) == 0
    verdict = capsys.readouterr().out.splitlines()[-1]
    assert verdict.startswith("VERIFIED: 7 entries recorded in the period, 2 signed and timestamped checkpoints, 2 "
                              f"cosigned by the witness {witness.key.name}"), verdict
    assert cli.main([str(out), "--public-key", str(pem), "--tsa-chain", tsa["chain"]]) == cli.UNANCHORED
    assert "UNANCHORED: not verified: give --witness-key" in capsys.readouterr().err
    assert cli.main([str(out)]) == cli.UNANCHORED  # the export's own copies are not trusted by default
    other = tmp_path / "other.vkey"
    other.write_text(keypair(witness.key.name)[1])  # another key under the witness's name
    assert cli.main([str(out), *anchors[:4], "--witness-key", str(other)]) == 1
    assert f"not cosigned by the witness {witness.key.name}" in capsys.readouterr().out

    assert await run_proof(settings, argparse.Namespace(response_id=rid, out=tmp_path / "proof.json")) == 0
    proof = json.loads((tmp_path / "proof.json").read_text())  # replay proof's file
    assert [e["content"]["seq"] for e in proof["entries"]] == [4, 5, 6, 7]
    assert cli.main([str(tmp_path / "proof.json"), *anchors]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("VERIFIED: 4 entries included in the checkpoint of "
                                                               "size 7, cosigned by the witness")
    proof["entries"][1]["inclusion"][0] = base64.b64encode(b"\0" * 32).decode()
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    assert cli.main([str(tmp_path / "proof.json"), *anchors]) == 1
    assert "FAILED  seq 5: the inclusion proof of leaf 4 does not lead to the root of size 7" in capsys.readouterr().out


async def test_the_audit_api_says_verified_only_when_witnessed(store: AuditStore, witness: Witness,
                                                               tsa: dict[str, str], tmp_path: Path) -> None:
    from moe_audit_verify.note import COSIGNATURE_V1, NoteKey
    from moe_audit_verify.segment import Trust

    anchor = anchoring(witness, tsa, tmp_path / "cp.jsonl", f"moe-test-{uuid.uuid4().hex[:8]}/audit")
    rid = f"r-{uuid.uuid4().hex}"
    await store.append_many([(r, []) for r in _records(rid, 0, 3)])
    trust = Trust(SIGNER.public, TsaChain(Path(tsa["chain"]).read_bytes()))
    pending = await store.verify(rid, trust, witness.key)
    assert (pending["verified"], pending["anchored"], pending["witnessed"]) == (False, False, False)
    assert pending["missing"][0].startswith("checkpoint: not yet covered")
    assert await checkpoint(store, "acme", anchor) is not None
    done = await store.verify(rid, trust, witness.key)
    assert (done["verified"], done["anchored"], done["witnessed"], done["missing"]) == (True, True, True, [])
    stranger = NoteKey(witness.key.name, COSIGNATURE_V1, SIGNER.public.raw)  # another key of the witness's name
    elsewhere = await store.verify(rid, trust, stranger)
    assert (elsewhere["verified"], elsewhere["witnessed"]) == (False, False)
    assert elsewhere["missing"][0].endswith(f"not cosigned by the witness {witness.key.name} (the key given)")


async def test_a_stopping_codex_lineage_checkpoints_what_it_wrote(store: AuditStore, witness: Witness,
                                                                  tsa: dict[str, str], tmp_path: Path) -> None:
    """Its memory of the head it wrote goes with the process: the entries no checkpoint covered yet are witnessed at
    shutdown, so a cut while it is stopped is below a witnessed size (refused, above)."""
    from codex_lineage.anchoring import final_checkpoint
    from codex_lineage.settings import LineageSettings

    anchor = anchoring(witness, tsa, tmp_path / "cp.jsonl", f"moe-test-{uuid.uuid4().hex[:8]}/audit")
    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 0, 5)])
    await final_checkpoint(LineageSettings(), store, anchor)
    assert await store.pool.fetchval("SELECT max(size) FROM audit_checkpoints WHERE note IS NOT NULL") == 5


async def test_codex_lineages_own_wiring_provisions_the_witness_and_gets_cosigned(
        store: AuditStore, tsa: dict[str, str], tmp_path: Path, infra: dict[str, str]) -> None:
    """As the fleet runs it: the witness learns the tenants' logs from codex-lineage's GET /v1/witness/logs, and the
    anchoring codex-lineage builds from its settings (MOE_AUDIT_WITNESS_URL, MOE_AUDIT_WITNESS_KEY given inline)
    gets the checkpoint cosigned."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    from codex_lineage import witness_api
    from codex_lineage.anchoring import anchoring_for
    from codex_lineage.settings import LineageSettings
    from tests.support.uvicorn_thread import bind, serve, url

    await store.append_many([(r, []) for r in _records(f"r-{uuid.uuid4().hex}", 0, 2)])
    served: dict[str, AuditStore] = {}

    @asynccontextmanager
    async def life(_: FastAPI) -> AsyncIterator[None]:  # the server thread's own pool (its own event loop)
        served["store"] = await AuditStore.connect(infra["postgres"], store.schema, migrate=False)
        app.state.parts.store = served["store"]
        yield
        await served["store"].close()

    name = f"moe-test-{uuid.uuid4().hex[:8]}/audit"
    sock = bind()
    with running_witness("witness.wiring", logs_url=f"{url('127.0.0.1', sock)}/v1/witness/logs") as witness:
        settings = LineageSettings(audit_log_name=name, audit_tsa_url=tsa["url"], audit_tsa_chain=tsa["chain"],
                                   audit_witness_url=witness.url, audit_witness_key=witness.key.vkey,
                                   audit_checkpoint_file=str(tmp_path / "cp.jsonl"))
        anchor = anchoring_for(settings, None, SIGNER)
        app = FastAPI(lifespan=life)
        app.state.parts = SimpleNamespace(anchoring=anchor)  # what the list reads of codex-lineage's parts
        app.include_router(witness_api.api)
        stop = serve(app, sock, what="codex-lineage's witness list")
        try:
            witness.wait_provisioned(f"{name}/acme")
            made = await checkpoint(store, "acme", anchor)
        finally:
            stop()
        assert made is not None and Note.parse(made.note or "").cosigned_at(witness.key) is not None
