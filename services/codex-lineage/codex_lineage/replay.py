"""The replay command: `python -m codex_lineage.replay …` (also `make replay ARGS="…"`).

  timeline RESPONSE_ID | --since T --until T [--tenant T]   the timeline, read from the topics themselves
  rebuild lineage --since T --until T [--keep]              re-derive lineage into a fresh schema; compare
  rebuild graph --since T --until T [--keep]                re-apply ingest/feedback/audit to a scratch graph
                                                            namespace; compare with the live graph
  verify RESPONSE_ID                                         signatures, chain, checkpoints, timestamps, and the
                                                            stored records against Kafka's while it holds them
  verify --checkpoints [--tenant T]                          the latest signed checkpoints
  export --tenant T --since T --until T --out DIR            a tenant's period for the offline verifier
                                                            (python -m moe_audit_verify DIR)
  evidence RESPONSE_ID | --tenant T --since T --until T      an evidence bundle (record, checkpoints, lineage,
           --out DIR|FILE.tar                            keys, signed manifest of digests), verified by
                                                            python -m moe_audit_verify PATH
  rerun [--today] RESPONSE_ID [--timeout S]                  the recorded request through today's fleet
  rerun --as-recorded RESPONSE_ID [--json] [--no-execute]   the request stage by stage as the signed record
                                                            holds it (models, servers, digests), re-executed
                                                            with the recorded model outputs: REPRODUCED or
                                                            the first differing stage and why

Settings come from the environment like every service's (MOE_KAFKA_BOOTSTRAP, MOE_TOPIC_NAMESPACE,
MOE_POSTGRES_DSN, MOE_AUDIT_SCHEMA, MOE_AUDIT_PUBLIC_KEY, MOE_AUDIT_TSA_CHAIN, MOE_NEO4J_URL, …).
Exit status: 0 ok, 1 a difference or a failed verification, 2 bad arguments or nothing found."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from codex_lineage.compare import compare_with_topics
from codex_lineage.reader import read_records
from codex_lineage.settings import LineageSettings
from moe_core.audit.checkpoints import stored
from moe_core.audit.store import AuditStore, timeline
from moe_core.audit.verify import load_trust, load_witness
from moe_core.contracts import Topics
from moe_core.contracts.client_ids import bare_response_id


def when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m codex_lineage.replay", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("timeline", help="a request's (or a time range's) messages, read from the topics")
    t.add_argument("response_id", nargs="?")
    t.add_argument("--since", type=when)
    t.add_argument("--until", type=when)
    t.add_argument("--tenant")
    t.add_argument("--json", action="store_true", help="the timeline as JSON (the audit API's shape)")
    r = sub.add_parser("rebuild", help="rebuild a store from the topics and compare it with the live one")
    r.add_argument("what", choices=["lineage", "graph"])
    r.add_argument("--since", type=when, required=True)
    r.add_argument("--until", type=when, required=True)
    r.add_argument("--schema", help="the fresh Postgres schema (default: <audit schema>_rebuild)")
    r.add_argument("--keep", action="store_true", help="keep the rebuilt schema (graph: the scratch tenants)")
    v = sub.add_parser("verify", help="verify a request's signed record, or print the latest checkpoints")
    v.add_argument("response_id", nargs="?")
    v.add_argument("--checkpoints", action="store_true")
    v.add_argument("--tenant")
    v.add_argument("--keyring", help="the keyring (JSON) of every key codex-lineage signed with (default: "
                                     "MOE_AUDIT_KEYRING)")
    f = sub.add_parser("proof", help="a request's inclusion proofs against a witnessed checkpoint (a JSON file)")
    f.add_argument("response_id")
    f.add_argument("--out", type=Path, required=True)
    x = sub.add_parser("export", help="export a tenant's period for the standalone verifier")
    x.add_argument("--tenant", required=True)
    x.add_argument("--since", type=when, required=True)
    x.add_argument("--until", type=when, required=True)
    x.add_argument("--out", type=Path, required=True, help="a new (or empty) directory")
    e = sub.add_parser("evidence", help="an evidence bundle of a request or a tenant's period (signed manifest)")
    e.add_argument("response_id", nargs="?")
    e.add_argument("--tenant")
    e.add_argument("--since", type=when)
    e.add_argument("--until", type=when)
    e.add_argument("--out", type=Path, required=True, help="a new (or empty) directory, or a .tar file")
    u = sub.add_parser("rerun", help="send a recorded request through today's fleet, print the differences")
    u.add_argument("response_id")
    how = u.add_mutually_exclusive_group()
    how.add_argument("--today", action="store_true", help="through today's fleet, differences stage by stage "
                                                          "(the default)")
    how.add_argument("--as-recorded", action="store_true", help="re-present it stage by stage from the signed "
                                                                "record (models, servers, digests) and re-execute it "
                                                                "with the recorded model outputs")
    u.add_argument("--json", action="store_true", help="--as-recorded: as JSON")
    u.add_argument("--no-execute", action="store_true", help="--as-recorded: the listing only, no re-execution")
    u.add_argument("--timeout", type=float, default=300.0)
    return p


async def run_timeline(settings: LineageSettings, args: argparse.Namespace) -> int:
    if not args.response_id and not (args.since and args.until):
        print("timeline: give a RESPONSE_ID or --since and --until", file=sys.stderr)
        return 2
    records = [r async for r in read_records(settings.kafka_bootstrap, Topics.for_namespace(settings.topic_namespace),
                                             args.since, args.until, args.response_id, args.tenant)]
    if not records:
        print("no messages found (retention may have removed them)", file=sys.stderr)
        return 2
    rows = timeline(records)
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        for row in rows:
            print(format_row(row))
    return 0


def format_row(row: dict[str, Any]) -> str:
    summary = json.dumps(row["summary"], ensure_ascii=False, separators=(",", ":"))
    return (f"{row['broker_timestamp']}  {row['response_id']}  {row['stage']:<14} {row['message_type']:<12} "
            f"{row['topic']}[{row['partition']}]@{row['offset']}  {summary[:300]}")


async def run_verify(settings: LineageSettings, args: argparse.Namespace) -> int:
    if not args.checkpoints and not args.response_id:
        print("verify: give a RESPONSE_ID or --checkpoints", file=sys.stderr)
        return 2
    store = await AuditStore.connect(settings.postgres_dsn, settings.audit_schema, migrate=False)
    try:
        if args.checkpoints:
            for cp in await stored(store, args.tenant):
                stamp = "timestamped" if cp.timestamp else "NOT timestamped"
                print(f"{cp.body['time']}  {cp.body['tenant_id']}  size={cp.size}  root={cp.root}  {stamp}")
            return 0
        trust = load_trust(settings.audit_public_key, settings.audit_tsa_chain, settings.audit_timestamp_skew_s,
                           args.keyring or settings.audit_keyring)
        try:
            result = await store.verify(args.response_id, trust, load_witness(settings.audit_witness_key))
        except asyncpg.UndefinedTableError:
            print(f"the audit store {settings.audit_schema!r} does not exist", file=sys.stderr)
            return 2
        if not result["records"]:
            print(f"no stored record of {args.response_id}", file=sys.stderr)
            return 2
        kafka, notes, compared = await compare_with_topics(settings, store, args.response_id)
    finally:
        await store.close()
    problems = result["problems"] + kafka
    for problem in problems:
        print(f"FAILED  {problem['record']}: {problem['problem']}")
    for note in notes:
        print(f"note    {note}")
    for missing in result["missing"]:
        print(f"MISSING {missing}")
    ok = not problems and not result["missing"]
    print(f"{'verified' if ok else 'NOT verified'}: {result['records']} records of {args.response_id} "
          f"(signatures, chain, checkpoints and timestamps"
          f"{', witnessed' if result.get('witnessed') else ''}; {compared} compared with their Kafka records)")
    return 0 if ok else 1


async def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "response_id", None):
        args.response_id = bare_response_id(args.response_id)  # chatcmpl-/msg_/resp_ ids name it too
    settings = LineageSettings()
    if args.command == "timeline":
        return await run_timeline(settings, args)
    if args.command == "verify":
        return await run_verify(settings, args)
    return await _other(settings, args)


async def _other(settings: LineageSettings, args: argparse.Namespace) -> int:
    """The commands besides timeline and verify, each importing what it needs when it runs (the graph's driver,
    OpenLineage, the rerun's fleet client): `replay verify` starts in a third of the time."""
    if args.command == "proof":
        from codex_lineage.proof_cmd import run_proof

        return await run_proof(settings, args)
    if args.command == "export":
        from codex_lineage.export import export_period

        return await export_period(settings, args.tenant, args.since, args.until, args.out)
    if args.command == "evidence":
        from codex_lineage.evidence.command import export_evidence

        return await export_evidence(settings, args.out, args.response_id, args.tenant, args.since, args.until)
    if args.command == "rebuild":
        return await _rebuild(settings, args)
    if args.as_recorded:
        from codex_lineage.as_recorded import present

        return await present(settings, args.response_id, args.json, not args.no_execute, args.timeout)
    from codex_lineage.rerun import rerun

    return await rerun(settings, args.response_id, args.timeout)


async def _rebuild(settings: LineageSettings, args: argparse.Namespace) -> int:
    if args.what == "graph":
        from codex_lineage.replay_graph import rebuild_graph

        return await rebuild_graph(settings, args.since, args.until, args.keep)
    from codex_lineage.rebuild import rebuild_lineage

    try:
        return await rebuild_lineage(settings, args.since, args.until, args.schema, args.keep)
    except asyncpg.InsufficientPrivilegeError as exc:  # `make replay` is read-only (no migrator)
        print(f"rebuild lineage: the comparison is written to a scratch schema, which this role may not make "
              f"({exc}); give it a role that may (MOE_AUDIT_MIGRATOR_DSN: the audit store's owner)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
