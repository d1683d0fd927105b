"""`python -m codex_lineage.adopt_keyring` (locally `make adopt-audit-keyring`): the one-shot migration of a keyring
rotated before rotations were signed. Such a keyring has keys without `introduced_by` (their predecessors' private
halves are destroyed, so nobody can sign those hand-overs any more), and every reader refuses it. The key in use
signs, once, every key of the ring up to itself with its retirement (the keyring's "adopted" block,
moe_audit_verify.keys.adoption_message); the keyring is then read again, and later rotations are introduced as
usual. Give the adopted keyring to your auditors: it vouches for the older keys only as far as the key in use does.

No second approver is needed (nothing new is trusted: the keys and retirements were the ring's already), but the
adoption is on the record: an AuditEvent `audit_keyring.adopted` (actor cli:<operating-system account>; the
adopting key and the keys it vouched for). Like the rotation, it refuses while Kafka cannot take that event
(exit 1), and says so when the event is lost after the adoption (exit 1). A keyring that needs nothing: exit 0,
nothing changed."""

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
    refused = preflight("adopt_keyring", settings, ("MOE_AUDIT_SIGNING_KEY", "MOE_AUDIT_KEYRING"),
                        "the adoption could not be recorded: the keyring was not changed")
    if refused is not None:
        return refused
    try:
        adopted = keyring.adopt(Path(settings.audit_signing_key), Path(settings.audit_keyring))
    except (OSError, ValueError, SigningKeyError) as exc:
        print(f"adopt_keyring failed: {exc}", file=sys.stderr)
        return 1
    if not adopted:
        print(f"the keyring {settings.audit_keyring} holds as it is: nothing to adopt")
        return 0
    by = adopted[-1]
    event = audit_event(None, actor=os_actor(), action="audit_keyring.adopted", subject=f"audit-key:{by}",
                        reason="a keyring rotated before rotations were signed, adopted by the key in use",
                        response_id=f"audit-keyring-{by}", details={"adopted_by": by, "keys": adopted})
    if not on_record("adopt_keyring", settings, event, f"{by} adopted {', '.join(adopted[:-1])}", ""):
        return 1
    print(f"audit keyring adopted: {by} (in use) vouches for {', '.join(adopted[:-1])} (keyring "
          f"{settings.audit_keyring}); give it to your auditors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
