"""The verifier's output for an evidence bundle (moe_audit_verify.evidence): the same lines, --json and exit status as
for an audit export."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from moe_audit_verify.diagnosis import cause
from moe_audit_verify.evidence import read_evidence, verify_evidence
from moe_audit_verify.published import compare, read_published
from moe_audit_verify.segment import Problem, Trust
from moe_audit_verify.versions import summary, unexpected

TrustOf = Callable[[argparse.Namespace, Path], tuple[Trust, str, str]]


def verify_evidence_cli(args: argparse.Namespace, folder: Path, trust_of: TrustOf,
                        packing: list[Problem] | None = None) -> int:
    """`packing`: the findings about the archive the bundle came in (moe_audit_verify.evidence.opened)."""
    ev = read_evidence(folder)
    trust, key_from, chain_from = trust_of(args, folder)
    verdict = verify_evidence(ev, trust)
    verdict.problems[:0] = packing or []
    if args.published:
        for chain in ev.chains:
            found, unreadable = read_published(args.published, chain["tenant_id"])
            ours = [c for c in verdict.given_checkpoints if c.body.get("tenant_id") == chain["tenant_id"]]
            verdict.problems += unreadable + compare(ours, found, args.published.name)
    if getattr(args, "expect_versions", None):
        try:
            expected = json.loads(Path(args.expect_versions).read_text())
        except (OSError, ValueError) as exc:
            verdict.problems.append(Problem(str(args.expect_versions), f"cannot be read as JSON ({exc})"))
        else:
            verdict.problems += unexpected(verdict.versions, expected if isinstance(expected, dict) else {})
    scope = ev.scope
    what = (f"request {scope['response_id']}" if scope["kind"] == "request"
            else f"tenant {scope['tenant_id']}, {scope['since']} .. {scope['until']}")
    ok = not verdict.problems
    signers = [ev.manifest.get("key_id")] + [c.body.get("key_id") for c in verdict.given_checkpoints]
    why = cause(verdict.problems, signers, trust.ring)
    if args.json:
        print(json.dumps({"verified": ok, "format": ev.manifest["format"], "scope": scope, "chains": ev.chains,
                          "entries": verdict.entries, "checkpoints": verdict.checkpoints,
                          "lineage_events": verdict.lineage_events, "versions": summary(verdict.versions),
                          "key_ids": list(trust.ring.keys),
                          "tsa_root_sha256": trust.tsa.fingerprint() if trust.tsa else None,
                          "cause": why, "problems": [p.as_dict() for p in verdict.problems]}, indent=1))
        return 0 if ok else 1
    stretches = ", ".join(f"{c['tenant_id']} seq {c['first_seq']}..{c['last_seq']}" for c in ev.chains)
    print(f"evidence bundle: {what}: {verdict.entries} entries ({stretches}), {verdict.lineage_events} lineage "
          f"events, {len(ev.manifest['files'])} files in the signed manifest")
    print(f"public keys: {trust.ring.describe()} ({key_from})")
    if trust.tsa is not None:
        print(f"TSA root certificate: sha256 {trust.tsa.fingerprint()} ({chain_from})")
    for service, used in summary(verdict.versions).items():
        prompts = ", ".join(f"{name} {' '.join(d[:19] for d in ds)}" for name, ds in used["prompts"].items())
        print(f"versions: {service} config {' '.join(d[:19] for d in used['config'])}"
              + (f"; prompts {prompts}" if prompts else ""))
    if why:
        print(f"CAUSE   {why}")
    for problem in verdict.problems:
        print(f"FAILED  {problem.record}: {problem.problem}")
    if ok:
        print(f"VERIFIED: the manifest's signature and every file's digest; {verdict.entries} entries signed and "
              f"chained, {verdict.checkpoints} signed and timestamped checkpoints"
              + (f", all published ({args.published})" if args.published else ""))
    else:
        print(f"NOT VERIFIED: {len(verdict.problems)} findings")
    return 0 if ok else 1

