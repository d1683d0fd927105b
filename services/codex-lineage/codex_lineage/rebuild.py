"""`replay rebuild lineage`: run the same derivation over a range of the topics into a fresh Postgres schema
and compare the rebuilt lineage with the live store's for the same range."""

from __future__ import annotations

from datetime import datetime

from codex_lineage.parts import lineage_for
from codex_lineage.reader import read_records
from codex_lineage.recorder import Recorder
from codex_lineage.settings import LineageSettings
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.runtime.bus import Bus


async def rebuild_lineage(settings: LineageSettings, since: datetime, until: datetime, schema: str | None = None,
                          keep: bool = False) -> int:
    """Print the comparison; 0 when the rebuilt events equal the live ones, 1 otherwise."""
    bus = Bus(settings)
    fresh = schema or f"{settings.audit_schema}_rebuild"[:63]
    if fresh == settings.audit_schema:
        raise ValueError("the rebuild needs another schema than the live store's")
    # the scratch store is signed by a throw-away key: it is a comparison, not the record
    rebuilt = await AuditStore.connect(settings.audit_migrator_dsn or settings.postgres_dsn, fresh,
                                       signer=Signer.ephemeral())
    live = await AuditStore.connect(settings.postgres_dsn, settings.audit_schema, migrate=False)
    try:
        await rebuilt.drop()
        await rebuilt.migrate()
        recorder = Recorder(bus.topics, rebuilt, lineage_for(settings, bus))
        count, batch = 0, []
        async for record in read_records(settings.kafka_bootstrap, bus.topics, since, until):
            batch.append(record)
            count += 1
            if len(batch) >= settings.lineage_batch_records:
                await recorder.write_batch(batch)
                batch = []
        if batch:
            await recorder.write_batch(batch)
        mine, theirs = await rebuilt.lineage_between(since, until), await live.lineage_between(since, until)
        print(f"rebuilt from {count} records into schema {fresh}: {len(mine)} lineage events; "
              f"live store ({settings.audit_schema}): {len(theirs)}")
        only_rebuilt, only_live = mine - theirs, theirs - mine
        for body in sorted(only_live)[:20]:
            print(f"  only in the live store: {body[:300]}")
        for body in sorted(only_rebuilt)[:20]:
            print(f"  only in the rebuild: {body[:300]}")
        print("EQUAL: the rebuilt lineage is the live lineage" if not (only_rebuilt or only_live) else
              f"DIFFERENT: {len(only_live)} only live, {len(only_rebuilt)} only rebuilt")
        return 0 if not (only_rebuilt or only_live) else 1
    finally:
        if not keep:
            await rebuilt.drop()
        await rebuilt.close()
        await live.close()
