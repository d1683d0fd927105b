"""One request's proof (format moe-audit-proof/1: replay proof, GET /v1/audit/{id}/proof): the request's entries,
each with its RFC 6962 inclusion proof, and the witnessed checkpoint they are proven against. Verified offline with
the auditor's anchors only: the checkpoint's signature (codex-lineage's key), its RFC 3161 timestamp (the TSA root),
its note and the witness's cosignature (the witness key), every entry's signature and its inclusion in the
checkpoint's Merkle root. What it proves: these entries are in the log the witness saw grow only by appending, at
their seqs. What it does not: that no other record of the request exists outside these entries (the request's
own numbering, rseq 1..n, is checked; the topics' comparison is `replay verify`'s)."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any

from moe_audit_verify.anchors import trusted_keys, tsa_roots, witness_key
from moe_audit_verify.format import content_hash, entry_message
from moe_audit_verify.merkle import ProofError, entry_leaf, verify_inclusion
from moe_audit_verify.segment import Checkpoint, Problem, Trust, check_checkpoints
from moe_audit_verify.witnessed import note_problem

FORMAT = "moe-audit-proof/1"


def verify_request_proof(proof: dict[str, Any], trust: Trust, witness: Any) -> tuple[list[Problem], int]:
    """Every finding, and how many entries were proven."""
    item = proof["checkpoint"]
    cp = Checkpoint(item["checkpoint"], item["signature"], item.get("timestamp"), item.get("note"))
    tenant = str(proof["tenant_id"])
    valid, problems = check_checkpoints([cp], trust, tenant)
    if not valid:
        return problems, 0
    why = note_problem(cp, trust, witness, tenant)
    if why is not None:
        return [*problems, Problem(cp.name, why)], 0
    root = base64.b64decode(str(cp.body["tree_root"]))
    proven, rseqs = 0, []
    for entry in proof["entries"]:
        content, seq = entry["content"], int(entry["content"]["seq"])
        name = f"seq {seq}"
        key = trust.ring.get(content.get("key_id"))
        digest = content_hash(content)
        if key is None or not key.verifies(entry_message(digest), entry["signature"]):
            problems.append(Problem(name, "signature does not match (or signed by a key not given)"))
            continue
        try:
            verify_inclusion(entry_leaf(entry["hash"]), seq - 1, cp.size,
                             [base64.b64decode(p) for p in entry["inclusion"]], root)
        except ProofError as exc:
            problems.append(Problem(name, str(exc)))
            continue
        proven += 1
        if content.get("kind") == "record":
            rseqs.append(int(content["rseq"]))
    if sorted(rseqs) != list(range(1, len(rseqs) + 1)):
        problems.append(Problem(f"request {proof.get('response_id')}", f"its records are numbered {sorted(rseqs)}: "
                                                                         "some are missing from the proof"))
    return problems, proven


def verify_request_proof_cli(args: argparse.Namespace) -> int:
    from moe_audit_verify.timestamps import TsaChain

    try:
        proof = json.loads(args.export.read_text())
        if not isinstance(proof, dict) or proof.get("format") != FORMAT:
            raise ValueError(f"not a request proof (format {FORMAT} expected)")
        keys, _ = trusted_keys(args, args.export.parent)
        chain_pem, _ = tsa_roots(args.tsa_chain, args.export.parent / "tsa-chain.pem")
        trust = Trust(keys, TsaChain(chain_pem), args.max_skew)
        witness = witness_key(args)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems, proven = verify_request_proof(proof, trust, None if args.no_witness else witness)
    cp = proof["checkpoint"]["checkpoint"]
    print(f"request {proof.get('response_id')}: tenant {proof.get('tenant_id')}, {len(proof['entries'])} entries, "
          f"against checkpoint size {cp.get('size')} at {cp.get('time')}")
    for problem in problems:
        print(f"FAILED  {problem.record}: {problem.problem}")
    if problems:
        print(f"NOT VERIFIED: {len(problems)} findings")
        return 1
    print(f"VERIFIED: {proven} entries included in the checkpoint of size {cp.get('size')}"
          + (f", cosigned by the witness {witness.name}" if witness is not None and not args.no_witness else
             ", NOT WITNESSED (--no-witness)"))
    return 0



