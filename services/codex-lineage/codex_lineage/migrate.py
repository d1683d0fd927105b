"""`python -m codex_lineage.migrate`: create or update the audit store's schema as the migrator role
(MOE_AUDIT_MIGRATOR_DSN, the owner of the tables), and grant codex-lineage's own role (MOE_AUDIT_WRITER_ROLE)
SELECT and INSERT only, the readers (MOE_AUDIT_READER_ROLES, e.g. the gateway's role) SELECT only.
Run before codex-lineage starts (fleetctl does); no request-serving service creates or alters these tables."""

from __future__ import annotations

import asyncio
import sys

from codex_lineage.settings import LineageSettings
from moe_core.audit.store import AuditStore


async def migrate(settings: LineageSettings) -> None:
    store = await AuditStore.connect(settings.audit_migrator_dsn or settings.postgres_dsn, settings.audit_schema,
                                     migrate=False)
    try:
        readers = tuple(r.strip() for r in settings.audit_reader_roles.split(",") if r.strip())
        await store.migrate(settings.audit_writer_role or None, readers)
    finally:
        await store.close()


def main() -> int:
    settings = LineageSettings()
    try:
        asyncio.run(migrate(settings))
    except (ValueError, OSError) as exc:
        print(f"audit migration failed: {exc}", file=sys.stderr)
        return 1
    print(f"audit store {settings.audit_schema}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
