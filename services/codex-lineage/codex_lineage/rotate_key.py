"""`python -m codex_lineage.rotate_key` (locally `make rotate-audit-key`): a new Ed25519 signing key for
codex-lineage. The old public key stays in the keyring (MOE_AUDIT_KEYRING), retired now; the old private key is
replaced (destroyed); the new public key is written to MOE_AUDIT_PUBLIC_KEY. Run it while codex-lineage is
stopped (it reads its key at start, and refuses to start with a retired one); give the new keyring to your
auditors: verifiers accept every key in it, a retired one only for what it signed before its retirement."""

from __future__ import annotations

import sys
from pathlib import Path

from codex_lineage.settings import LineageSettings
from moe_core.audit import keyring
from moe_core.audit.signer import SigningKeyError


def main() -> int:
    settings = LineageSettings()
    missing = [name for name, value in (("MOE_AUDIT_SIGNING_KEY", settings.audit_signing_key),
                                        ("MOE_AUDIT_PUBLIC_KEY", settings.audit_public_key),
                                        ("MOE_AUDIT_KEYRING", settings.audit_keyring)) if not value]
    if missing:
        print(f"rotate_key: set {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        old, new = keyring.rotate(Path(settings.audit_signing_key), Path(settings.audit_public_key),
                                  Path(settings.audit_keyring))
    except (OSError, ValueError, SigningKeyError) as exc:
        print(f"rotate_key failed: {exc}", file=sys.stderr)
        return 1
    print(f"audit signing key rotated: {old} retired, {new} in use (keyring {settings.audit_keyring}); "
          "start codex-lineage again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
