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

import sys
from pathlib import Path

from codex_lineage.operator_cli import on_record, preflight
from codex_lineage.settings import LineageSettings
from moe_core.audit import keyring
from moe_core.audit.signer import SigningKeyError
from moe_core.knowledge.graph.audit import audit_event
from moe_core.runtime.publish_once import os_actor


def main() -> int:
    settings = LineageSettings()
    refused = preflight("rotate_key", settings, ("MOE_AUDIT_SIGNING_KEY", "MOE_AUDIT_PUBLIC_KEY", "MOE_AUDIT_KEYRING"),
                        "the rotation could not be recorded: the key was not rotated")
    if refused is not None:
        return refused
    try:
        old, new = keyring.rotate(Path(settings.audit_signing_key), Path(settings.audit_public_key),
                                  Path(settings.audit_keyring))
    except (OSError, ValueError, SigningKeyError) as exc:
        print(f"rotate_key failed: {exc}", file=sys.stderr)
        return 1
    event = audit_event(None, actor=os_actor(), action="audit_key.rotated", subject=f"audit-key:{new}",
                        reason="the audit signing key was rotated", response_id=f"audit-key-{new}",
                        details={"retired": old, "in_use": new})
    if not on_record("rotate_key", settings, event, f"{old} retired and {new} in use",
                     " before starting codex-lineage"):
        return 1
    print(f"audit signing key rotated: {old} retired, {new} in use (keyring {settings.audit_keyring}); "
          "start codex-lineage again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
