"""`python -m codex_lineage.rotate_key` (locally `make rotate-audit-key`): a new Ed25519 signing key for
codex-lineage. The old public key stays in the keyring (MOE_AUDIT_KEYRING), retired now; the old private key is
replaced (destroyed); the new public key is written to MOE_AUDIT_PUBLIC_KEY. Run it while codex-lineage is
stopped (it reads its key at start, and refuses to start with a retired one); give the new keyring to your
auditors: verifiers accept every key in it, a retired one only for what it signed before its retirement.

The rotation is on the record: an AuditEvent `audit_key.rotated` (actor cli:<operating-system account>; the
retired and the new key ids) on the audit topic, which codex-lineage then stores in the chain under the new key.
It refuses to rotate while Kafka cannot take that event (exit 1), and says so when the event is lost after the
rotation (exit 1)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from codex_lineage.settings import LineageSettings
from moe_core.audit import keyring
from moe_core.audit.signer import SigningKeyError
from moe_core.knowledge.graph.audit import audit_event
from moe_core.runtime.publish_once import os_actor, publish_alone, reachable


def main() -> int:
    settings = LineageSettings()
    missing = [name for name, value in (("MOE_AUDIT_SIGNING_KEY", settings.audit_signing_key),
                                        ("MOE_AUDIT_PUBLIC_KEY", settings.audit_public_key),
                                        ("MOE_AUDIT_KEYRING", settings.audit_keyring)) if not value]
    if missing:
        print(f"rotate_key: set {', '.join(missing)}", file=sys.stderr)
        return 2
    if not asyncio.run(reachable(settings)):
        print("rotate_key: Kafka is unreachable, so the rotation could not be recorded: the key was not rotated",
              file=sys.stderr)
        return 1
    try:
        old, new = keyring.rotate(Path(settings.audit_signing_key), Path(settings.audit_public_key),
                                  Path(settings.audit_keyring))
    except (OSError, ValueError, SigningKeyError) as exc:
        print(f"rotate_key failed: {exc}", file=sys.stderr)
        return 1
    event = audit_event(None, actor=os_actor(), action="audit_key.rotated", subject=f"audit-key:{new}",
                        reason="the audit signing key was rotated", response_id=f"audit-key-{new}",
                        details={"retired": old, "in_use": new})
    if not asyncio.run(publish_alone(settings, event)):
        print(f"rotate_key: {old} retired and {new} in use, but the rotation is NOT on the record (Kafka became "
              "unreachable): record it by hand before starting codex-lineage", file=sys.stderr)
        return 1
    print(f"audit signing key rotated: {old} retired, {new} in use (keyring {settings.audit_keyring}); "
          "start codex-lineage again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
