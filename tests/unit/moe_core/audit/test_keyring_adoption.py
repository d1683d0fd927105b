"""A keyring rotated before rotations were signed (issue 47, item 5): its keys carry no `introduced_by`, so every
reader refuses it; `keyring.adopt` (python -m codex_lineage.adopt_keyring) has the key in use sign the older keys and
their retirements once, after which it is read again, and no later change to what was adopted holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moe_audit_verify.keys import KeyRing
from moe_core.audit import keyring
from moe_core.audit.signer import Signer

pytestmark = pytest.mark.unit
NOW = datetime.now(UTC).replace(microsecond=0)


def _legacy(folder: Path) -> tuple[Path, Path, list[Signer]]:
    """Three keys, two retired, written as a keyring was before `introduced_by` (the private key: the third's)."""
    signers = []
    for name in ("one", "two", "three"):
        path = folder / f"{name}.pem"
        keyring.ensure(path, folder / f"{name}.pub")
        signers.append(Signer.from_file(path))
    ring = KeyRing([s.public for s in signers], {signers[0].key_id: NOW - timedelta(days=30),
                                                  signers[1].key_id: NOW - timedelta(days=2)})
    path = folder / "keyring.json"
    path.write_text(ring.to_json())
    return path, folder / "three.pem", signers


def _doc(path: Path) -> dict:  # type: ignore[type-arg]
    return dict(json.loads(path.read_text()))


def test_a_legacy_keyring_is_refused_until_the_key_in_use_adopts_it(tmp_path: Path) -> None:
    ring, private, signers = _legacy(tmp_path)
    with pytest.raises(ValueError, match="not introduced by a rotation"):
        KeyRing.from_json(ring.read_bytes())
    with pytest.raises(ValueError, match="not the keyring's last key in use"):
        keyring.adopt(tmp_path / "two.pem", ring)  # a retired key's (had its private half survived) adopts nothing
    adopted = keyring.adopt(private, ring)
    assert adopted == [s.key_id for s in signers]
    loaded = KeyRing.from_json(ring.read_bytes())
    assert loaded.adoption is not None and loaded.adoption.key_id == signers[2].key_id
    assert set(loaded.retired) == {signers[0].key_id, signers[1].key_id}
    assert keyring.adopt(private, ring) == []  # once: a keyring that holds needs nothing
    keyring.rotate(private, tmp_path / "three.pub", ring)  # later rotations are introduced as usual
    rotated = KeyRing.from_json(ring.read_bytes())
    assert len(rotated.keys) == 4 and signers[2].key_id in rotated.retired


@pytest.mark.parametrize("change", ["retirement moved", "key added", "key removed", "adopter swapped", "later"])
def test_an_adopted_keyring_changed_afterwards_is_refused(tmp_path: Path, change: str) -> None:
    ring, private, signers = _legacy(tmp_path)
    keyring.adopt(private, ring)
    doc = _doc(ring)
    if change == "retirement moved":  # an old key made to vouch for later entries
        doc["keys"][0]["retired_at"] = (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    elif change == "key added":  # a key of the editor's own, slipped in before the adopter
        extra = tmp_path / "extra.pem"
        keyring.ensure(extra, tmp_path / "extra.pub")
        item = {"id": Signer.from_file(extra).key_id, "public_key": Signer.from_file(extra).public.pem().decode(),
                "retired_at": (NOW - timedelta(days=3)).isoformat().replace("+00:00", "Z")}
        doc["keys"].insert(1, item)
        doc["adopted"]["keys"].insert(1, item["id"])
    elif change == "key removed":
        del doc["keys"][1]
    elif change == "adopter swapped":  # the adoption claimed by an older key
        doc["adopted"]["key_id"] = signers[1].key_id
    else:  # adopted "in the future"
        doc["adopted"]["at"] = (NOW + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    ring.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="refused"):
        KeyRing.from_json(ring.read_bytes())
