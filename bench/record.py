"""The record beside the bench's fleet (`make bench --record`): codex-lineage as production runs it (its own
Postgres role, a signing key of its own) writing into an audit schema of this run's own, made by the migrator role
as fleetctl makes the production one and dropped when the run ends. The run's chains are signed with a key that is
thrown away with the run: in the shared `audit` schema they would stay behind as chains no later codex-lineage can
verify, and every later one would refuse to checkpoint them (and search them for moved entries) at every interval."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.audit_schema import drop_schema, migrate_schema, own_schema
from tests.support.fleet import audit_keys

log = logging.getLogger("bench")


@contextmanager
def record_env(eps: dict[str, str], namespace: str) -> Iterator[dict[str, str]]:
    """What the fleet's environment gains for codex-lineage; the schema exists while the context is open."""
    env = {**audit_keys(migrate=False), "MOE_AUDIT_SCHEMA": own_schema(namespace)}
    owner = eps["postgres-audit-migrator"]
    migrate_schema({**env, "MOE_POSTGRES_DSN": eps["postgres"]}, owner)
    try:
        yield env
    finally:
        try:
            drop_schema(owner, env["MOE_AUDIT_SCHEMA"])
        except OSError as exc:  # the run's figures matter more than its leftover schema: name it and go on
            log.warning("the run's audit schema %s was not dropped (%s); drop it with: DROP SCHEMA \"%s\" CASCADE",
                        env["MOE_AUDIT_SCHEMA"], exc, env["MOE_AUDIT_SCHEMA"])
