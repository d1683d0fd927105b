"""python -m moe_audit_verify EXPORT [--public-key PEM]... [--keyring JSON] [--tsa-chain PEM]... [--published FILE]

Verifies an exported audit period or an evidence bundle offline (no database, no fleet): every entry's Ed25519
signature and place in the tenant's chain, the chain against the signed checkpoints, each checkpoint's RFC 3161
timestamp against the timestamp authority's certificate chain, and that checkpoints close the period at both ends. An
evidence bundle (a request's or a period's record with its lineage events, a signed manifest of digests:
moe_audit_verify.evidence; a directory or its .tar) fails on any changed byte as well.

Give the public keys (or codex-lineage's keyring: every key it signed with, each retired one with its retirement
time) and the TSA chain you obtained from the operator and the authority yourself; without them the copies
inside the export are used (and their fingerprints printed, to compare). A checkpoint or entry signed by a
retired key after its retirement fails. With --published (the append-only checkpoint file codex-lineage writes,
or a copy you received) the export's checkpoints are compared with the published ones.
A request's proof (replay proof, or GET /v1/audit/ID/proof: a .json file) is verified the same way: each of its
entries' inclusion proof against the witnessed checkpoint it names.

Nothing the export carries is trusted by default: without codex-lineage's key (--public-key or --keyring), the TSA
chain (--tsa-chain) and the witness's key (--witness-key, or --no-witness for a deployment without one) it does not
verify and says UNANCHORED (exit status 3).
Exit status: 0 verified, 1 a finding (each printed as a FAILED line), 2 not an export or unusable input,
3 unanchored."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from moe_audit_verify.anchors import trusted_keys, tsa_roots, witness_key
from moe_audit_verify.bundle import BundleError, read_bundle, verify_bundle
from moe_audit_verify.cli_evidence import verify_evidence_cli
from moe_audit_verify.diagnosis import cause
from moe_audit_verify.evidence import is_evidence, opened
from moe_audit_verify.published import compare, read_published
from moe_audit_verify.request_proof import verify_request_proof_cli
from moe_audit_verify.segment import Trust
from moe_audit_verify.timestamps import TsaChain
from moe_audit_verify.witnessed import check_witnessed


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m moe_audit_verify", description=__doc__.splitlines()[2],
                                epilog="Exit status: 0 verified, 1 findings, 2 unusable input.")
    p.add_argument("export", type=Path, help="the export directory (replay export --out DIR), or an evidence bundle "
                                             "(replay evidence: a directory or its .tar)")
    p.add_argument("--public-key", type=Path, action="append", default=[],
                   help="a public key of codex-lineage, PEM; repeat it for several (default: the export's copy)")
    p.add_argument("--keyring", type=Path, help="codex-lineage's keyring, JSON: every key it signed with and when "
                                                "each was retired (default: the export's keyring.json, if any)")
    p.add_argument("--tsa-chain", type=Path, action="append", default=[],
                   help="the TSA's certificate chain, PEM; repeat it for a keyring of TSA roots (the old and the new "
                        "authority's, across a change of TSA) (default: the export's copy)")
    p.add_argument("--published", type=Path, help="the published checkpoints (codex-lineage's append-only "
                                                  "checkpoint file, JSON lines): the export's must be among them")
    p.add_argument("--max-skew", type=float, default=300.0,
                   help="seconds a timestamp may differ from its checkpoint's time (default 300)")
    p.add_argument("--expect-versions", type=Path, help="an evidence bundle: the configuration and prompt template "
                   "digests you approved, JSON {service: {config: [...], prompts: {name: [...]}}} (the `versions` of "
                   "a reviewed bundle's --json); any stage run with another fails")
    p.add_argument("--witness-key", type=Path, help="the witness's vkey (C2SP note key, a file): every checkpoint "
                                                     "must carry its cosignature")
    p.add_argument("--no-witness", action="store_true", help="the deployment has no witness: its checkpoints' "
                   "cosignatures are not checked (said in the result)")
    p.add_argument("--trust-export-copies", action="store_true", help="use the export's own copies of the public "
                   "key and the TSA chain where none is given (they come from the operator: the result is "
                   "UNANCHORED, exit status 3, whatever it finds)")
    p.add_argument("--json", action="store_true", help="the result as one JSON object")
    return p


UNANCHORED = 3


def missing_anchors(args: argparse.Namespace) -> list[str]:
    """The auditor-held anchors not given: without them nothing the export carries is trusted."""
    missing = []
    if not (args.keyring or args.public_key):
        missing.append("--public-key or --keyring (codex-lineage's key)")
    if not args.tsa_chain:
        missing.append("--tsa-chain (the timestamp authority's root)")
    if not (args.witness_key or args.no_witness):
        missing.append("--witness-key (the witness's key; --no-witness where the deployment has none)")
    return missing


def trust_of(args: argparse.Namespace, folder: Path) -> tuple[Trust, str, str]:
    """The keys and the TSA chain to trust, and where each came from (given, or the bundle's own copy)."""
    keys, key_from = trusted_keys(args, folder)
    chain_pem, chain_from = tsa_roots(args.tsa_chain, folder / "tsa-chain.pem")
    return Trust(keys, TsaChain(chain_pem), args.max_skew), key_from, chain_from


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    missing = missing_anchors(args)
    if missing and not args.trust_export_copies:
        print(f"UNANCHORED: not verified: give {', '.join(missing)}; the export's own copies come from the operator "
              "and are not trusted (--trust-export-copies uses them, and the result stays UNANCHORED)",
              file=sys.stderr)
        return UNANCHORED
    if args.export.is_file() and args.export.suffix == ".json":
        return verify_request_proof_cli(args)
    code = _main(args)
    if missing and code != 2:
        print(f"UNANCHORED: verified only against what the export carries: {', '.join(missing)} not given")
        return UNANCHORED
    return code


def _main(args: argparse.Namespace) -> int:
    try:
        if is_evidence(args.export):
            with opened(args.export) as (folder, packing):
                return verify_evidence_cli(args, folder, trust_of, packing)
    except (BundleError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        bundle = read_bundle(args.export)
        keys, key_from = trusted_keys(args)
        chain_pem, chain_from = tsa_roots(args.tsa_chain, args.export / "tsa-chain.pem")
        trust = Trust(keys, TsaChain(chain_pem), args.max_skew)
        published = read_published(args.published, bundle.tenant) if args.published else None
        witness = witness_key(args)
    except (BundleError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = verify_bundle(bundle, trust)
    witnessed = None
    if not args.no_witness:
        witnessed = check_witnessed(bundle.entries, bundle.checkpoints, bundle.tree, trust, witness, bundle.tenant)
        verdict.problems += witnessed.problems
    if published is not None:
        found, unreadable = published
        verdict.problems += unreadable + compare(bundle.checkpoints, found, args.published.name)
    m = bundle.manifest
    ok = not verdict.problems
    why = cause(verdict.problems, [e.content.get("key_id") for e in bundle.entries]
                + [c.body.get("key_id") for c in bundle.checkpoints], trust.ring)
    if args.json:
        print(json.dumps({"verified": ok, "tenant_id": bundle.tenant, "since": m["since"], "until": m["until"],
                          "entries": len(bundle.entries), "in_period": verdict.in_period,
                          "checkpoints": verdict.checkpoints, "key_ids": list(trust.ring.keys),
                          "tsa_root_sha256": trust.tsa.fingerprint() if trust.tsa else None,
                          "witness": witness.vkey if witness else None,
                          "cosigned": witnessed.cosigned if witnessed else None,
                          "cause": why, "problems": [p.as_dict() for p in verdict.problems]}, indent=1))
        return 0 if ok else 1
    _report(args, bundle, trust, verdict, (witness, witnessed), published, why, (key_from, chain_from))
    return 0 if ok else 1


def _report(args: argparse.Namespace, bundle: Any, trust: Trust, verdict: Any, witnessing: tuple[Any, Any],
            published: Any, why: str | None, sources: tuple[str, str]) -> None:
    """The verdict as the auditor reads it: the export, the anchors used and where they came from, each finding."""
    witness, witnessed = witnessing
    key_from, chain_from = sources
    m = bundle.manifest
    ok = not verdict.problems
    print(f"export: tenant {bundle.tenant}, {m['since']} .. {m['until']}: {len(bundle.entries)} entries "
          f"from seq {m['first_seq']}, {len(bundle.checkpoints)} checkpoints")
    print(f"public keys: {trust.ring.describe()} ({key_from})")
    if trust.tsa is not None:
        print(f"TSA root certificate: sha256 {trust.tsa.fingerprint()} ({chain_from})")
    if why:
        print(f"CAUSE   {why}")
    for problem in verdict.problems:
        print(f"FAILED  {problem.record}: {problem.problem}")
    if ok:
        print(f"VERIFIED: {verdict.in_period} entries recorded in the period, {verdict.checkpoints} signed and "
              f"timestamped checkpoints" + (f", {witnessed.cosigned} cosigned by the witness {witness.name} with the "
                                            "Merkle roots of the export's entries and a consistency proof"
                                            if witnessed is not None and witness is not None else
                                            ", NOT WITNESSED (--no-witness)")
              + (f", all published ({args.published})" if published is not None else ""))
    else:
        print(f"NOT VERIFIED: {len(verdict.problems)} findings")
