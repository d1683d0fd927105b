"""The record's consumer bounds what it fetches ahead (issue 52: with aiokafka's defaults, 1 MB a partition and
50 MB a fetch, codex-lineage held tens of MB of fetched records whenever it fell behind the fleet): its subscriber,
as codex-lineage builds it, hands aiokafka MOE_LINEAGE_FETCH_MAX_BYTES and MOE_LINEAGE_PARTITION_FETCH_BYTES."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from codex_lineage.app import create_app
from codex_lineage.settings import LineageSettings

pytestmark = pytest.mark.unit


def _consumer_args(settings: LineageSettings) -> dict[str, Any]:
    app = create_app(settings)
    (subscriber,) = [s for s in app.state.parts.bus.broker.subscribers if len(s.topics) > 1]  # every recorded topic
    return dict(subscriber._connection_args)


def test_the_record_consumers_fetches_are_bounded(tmp_path: Path) -> None:
    key = tmp_path / "audit.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key.chmod(0o600)
    args = _consumer_args(LineageSettings(audit_signing_key=str(key)))
    assert (args["fetch_max_bytes"], args["max_partition_fetch_bytes"]) == (4 * 1024 * 1024, 256 * 1024)
    args = _consumer_args(LineageSettings(audit_signing_key=str(key), lineage_fetch_max_bytes=1 << 20,
                                          lineage_partition_fetch_bytes=1 << 16))
    assert (args["fetch_max_bytes"], args["max_partition_fetch_bytes"]) == (1 << 20, 1 << 16)
