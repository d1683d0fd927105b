"""What codex-lineage's operator commands (`cutover`, `rotate_key`, `adopt_keyring`) share: the start (each
setting the command needs is set, exit 2 naming the missing; Kafka can take the audit event, exit 1 with nothing
done) and the end (the event on the record, or exit 1 saying it is not)."""

from __future__ import annotations

import asyncio
import sys

from codex_lineage.settings import LineageSettings
from moe_core.contracts import AuditEvent
from moe_core.runtime.publish_once import publish_alone, reachable


def preflight(command: str, settings: LineageSettings, required: tuple[str, ...], not_done: str) -> int | None:
    """None when the command may go on; else its exit code, with the reason on stderr. `required` are the
    settings' environment names (MOE_AUDIT_SIGNING_KEY → settings.audit_signing_key); `not_done` ends the
    sentence "Kafka is unreachable, so …"."""
    missing = [name for name in required if not getattr(settings, name.removeprefix("MOE_").lower())]
    if missing:
        print(f"{command}: set {', '.join(missing)}", file=sys.stderr)
        return 2
    if not asyncio.run(reachable(settings)):
        print(f"{command}: Kafka is unreachable, so {not_done}", file=sys.stderr)
        return 1
    return None


def on_record(command: str, settings: LineageSettings, event: AuditEvent, done: str, then: str) -> bool:
    """Publish the command's audit event alone; False (and why, on stderr) when it did not reach the record.
    `done` says what was changed all the same; `then` what the operator must do about it."""
    if asyncio.run(publish_alone(settings, event)):
        return True
    print(f"{command}: {done}, but NOT on the record (Kafka became unreachable): record it by hand{then}",
          file=sys.stderr)
    return False
