"""python -m moe_audit_verify EXPORT_DIR [--public-key PEM] [--tsa-chain PEM] [--max-skew S] [--json]

Verifies an exported audit period offline (no database, no fleet): every entry's Ed25519 signature and place
in the tenant's chain, the chain against the signed checkpoints, each checkpoint's RFC 3161 timestamp
against the timestamp authority's certificate chain, and that checkpoints close the period at both ends.

Give the public key and the TSA chain you obtained from the operator and the authority yourself; without
them the copies inside the export are used (and their fingerprints printed, to compare).
Exit status: 0 verified, 1 a finding (each printed as a FAILED line), 2 not an export or unusable input."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from moe_audit_verify.bundle import BundleError, read_bundle, verify_bundle
from moe_audit_verify.keys import PublicKey
from moe_audit_verify.segment import Trust
from moe_audit_verify.timestamps import TsaChain


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m moe_audit_verify", description=__doc__.splitlines()[2],
                                epilog="Exit status: 0 verified, 1 findings, 2 unusable input.")
    p.add_argument("export", type=Path, help="the export directory (replay export --out DIR)")
    p.add_argument("--public-key", type=Path, help="codex-lineage's public key, PEM (default: the export's copy)")
    p.add_argument("--tsa-chain", type=Path, help="the TSA's certificate chain, PEM (default: the export's copy)")
    p.add_argument("--max-skew", type=float, default=300.0,
                   help="seconds a timestamp may differ from its checkpoint's time (default 300)")
    p.add_argument("--json", action="store_true", help="the result as one JSON object")
    return p


def _read(given: Path | None, fallback: Path, what: str) -> tuple[bytes, str]:
    path = given or fallback
    try:
        return path.read_bytes(), ("given" if given else "the export's own copy: compare it with the published one")
    except OSError as exc:
        raise BundleError(f"{what}: cannot read {path} ({exc.strerror})") from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        bundle = read_bundle(args.export)
        key_pem, key_from = _read(args.public_key, args.export / "public-key.pem", "public key")
        chain_pem, chain_from = _read(args.tsa_chain, args.export / "tsa-chain.pem", "TSA chain")
        trust = Trust(PublicKey.from_pem(key_pem), TsaChain(chain_pem), args.max_skew)
    except (BundleError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = verify_bundle(bundle, trust)
    m = bundle.manifest
    ok = not verdict.problems
    if args.json:
        print(json.dumps({"verified": ok, "tenant_id": bundle.tenant, "since": m["since"], "until": m["until"],
                          "entries": len(bundle.entries), "in_period": verdict.in_period,
                          "checkpoints": verdict.checkpoints, "key_id": trust.key.id,
                          "tsa_root_sha256": trust.tsa.fingerprint() if trust.tsa else None,
                          "problems": [p.as_dict() for p in verdict.problems]}, indent=1))
        return 0 if ok else 1
    print(f"export: tenant {bundle.tenant}, {m['since']} .. {m['until']}: {len(bundle.entries)} entries "
          f"from seq {m['first_seq']}, {len(bundle.checkpoints)} checkpoints")
    print(f"public key: id {trust.key.id} ({key_from})")
    if trust.tsa is not None:
        print(f"TSA root certificate: sha256 {trust.tsa.fingerprint()} ({chain_from})")
    for problem in verdict.problems:
        print(f"FAILED  {problem.record}: {problem.problem}")
    if ok:
        print(f"VERIFIED: {verdict.in_period} entries recorded in the period, {verdict.checkpoints} signed and "
              f"timestamped checkpoints")
    else:
        print(f"NOT VERIFIED: {len(verdict.problems)} findings")
    return 0 if ok else 1
