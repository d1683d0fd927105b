"""The RFC 6962 tree (moe_audit_verify.merkle) and the C2SP signed notes (moe_audit_verify.note) on their own:
every inclusion and consistency proof of trees up to 33 leaves verifies, and a changed leaf, root, size or proof
node does not; a note verifies with its key only; a cosignature/v1 over a checkpoint is checked as the witness
makes it (the witness's own answers: tests/lineage/codex_lineage/test_witnessed_checkpoints.py)."""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from moe_audit_verify import merkle
from moe_audit_verify.note import (
    COSIGNATURE_V1,
    ED25519,
    Note,
    NoteError,
    NoteKey,
    checkpoint_text,
    cosigned_message,
    raw,
    signature_line,
)

pytestmark = pytest.mark.unit


def sign_note(text: bytes, name: str, private: Ed25519PrivateKey) -> str:
    """`text` signed as a note by `name`'s Ed25519 note key (as moe_core.audit.checkpoints signs)."""
    key = NoteKey(name, ED25519, raw(private.public_key()))
    return text.decode() + "\n" + signature_line(name, key, private.sign(text))
LEAVES = [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(33)]


def test_the_root_of_known_trees() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()
    a, b, c = LEAVES[:3]
    assert merkle.root([a]) == a
    assert merkle.root([a, b, c]) == merkle.node_hash(merkle.node_hash(a, b), c)


def test_every_inclusion_proof_verifies_and_a_changed_one_does_not() -> None:
    for n in range(1, len(LEAVES) + 1):
        root = merkle.root(LEAVES[:n])
        for i in range(n):
            proof = merkle.inclusion_proof(LEAVES[:n], i)
            merkle.verify_inclusion(LEAVES[i], i, n, proof, root)
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(LEAVES[(i + 1) % n] if n > 1 else LEAVES[-1], i, n, proof, root)
            if proof:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_inclusion(LEAVES[i], i, n, [*proof[:-1], b"\xff" * 32], root)


def test_every_consistency_proof_verifies_and_a_rewritten_history_does_not() -> None:
    for n in range(1, len(LEAVES) + 1):
        new_root = merkle.root(LEAVES[:n])
        for m in range(1, n + 1):
            old_root = merkle.root(LEAVES[:m])
            proof = merkle.consistency_proof(LEAVES[:n], m)
            merkle.verify_consistency(m, n, old_root, new_root, proof)
            forged = [*LEAVES[:m - 1], LEAVES[-1], *LEAVES[m:n]]  # leaf m-1 changed after size m was seen
            if m < n:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(m, n, old_root, merkle.root(forged),
                                              merkle.consistency_proof(forged, m))
    with pytest.raises(merkle.ProofError, match="the log shrank"):
        merkle.verify_consistency(5, 4, b"", b"", [])


def test_a_note_verifies_with_its_key_only() -> None:
    key = Ed25519PrivateKey.generate()
    text = checkpoint_text("moe-fleet/audit/acme", 7, LEAVES[6])
    note = Note.parse(sign_note(text, "moe-fleet/audit", key))
    assert note.checkpoint() == ("moe-fleet/audit/acme", 7, LEAVES[6])
    ours = NoteKey("moe-fleet/audit", ED25519, raw(key.public_key()))
    assert note.signed_by(ours)
    assert NoteKey.parse(ours.vkey) == ours
    assert not note.signed_by(NoteKey("moe-fleet/audit", ED25519, raw(Ed25519PrivateKey.generate().public_key())))
    changed = Note(text.replace(b"\n7\n", b"\n8\n"), note.signatures)
    assert not changed.signed_by(ours)
    with pytest.raises(NoteError, match="does not match its key"):
        NoteKey.parse(ours.vkey.replace(ours.hash.hex(), "00000000"))


def test_a_cosignature_v1_binds_the_witness_time_and_the_checkpoint() -> None:
    witness = Ed25519PrivateKey.generate()
    wkey = NoteKey("witness.example", COSIGNATURE_V1, raw(witness.public_key()))
    text = checkpoint_text("moe-fleet/audit/acme", 3, LEAVES[2])
    cosig = struct.pack(">Q", 1_700_000_000) + witness.sign(cosigned_message(1_700_000_000, text))
    note = Note.parse(text.decode() + "\n" + signature_line(wkey.name, wkey, cosig))
    assert note.cosigned_at(wkey) == 1_700_000_000
    moved = struct.pack(">Q", 1_700_000_001) + cosig[8:]  # another time under the same signature
    assert Note.parse(text.decode() + "\n" + signature_line(wkey.name, wkey, moved)).cosigned_at(wkey) is None


def test_a_compact_range_gives_every_root_from_its_size_on() -> None:
    for start in range(0, 20):
        compact = merkle.CompactRange.of(LEAVES[:start])
        assert len(compact.hashes) == bin(start).count("1") and compact.root() == merkle.root(LEAVES[:start])
        resumed = merkle.CompactRange(start, compact.hashes)
        for n in range(start, len(LEAVES)):
            resumed.append(LEAVES[n])
            assert resumed.root() == merkle.root(LEAVES[:n + 1])
    with pytest.raises(merkle.ProofError, match="made of 2 perfect subtrees, not 1"):
        merkle.CompactRange(3, [LEAVES[0]])
