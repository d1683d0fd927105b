"""The backup tool's parts that need no store (control_plane.ops.backup): the manifest catches a changed, missing or
added file; the newest backup is found by its manifest's time; graph properties survive their JSON form; the Redis
prefixes a backup keeps are declared keys and no cache; the backups compliance check passes on a current, whole
backup and fails on an old or damaged one (the restore against real stores:
tests/chaos/control_plane/test_restore_drill.py)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from codex_lineage.compliance.checks_operations import backups
from codex_lineage.settings import LineageSettings
from control_plane.ops.backup import graph, redis_state
from control_plane.ops.backup.__main__ import main
from moe_core.runtime import backup_manifest
from moe_core.runtime.redis_keys import KEYS

pytestmark = pytest.mark.unit


def _backup(folder: Path, made: datetime) -> Path:
    (folder / "neo4j").mkdir(parents=True)
    (folder / "postgres.dump").write_bytes(b"PGDMP archive")
    (folder / "neo4j" / "nodes.jsonl").write_text('{"id": "1"}\n')
    backup_manifest.write(folder, made, {"postgres": {}}, {"acme": {"seq": 7, "hash": "ab", "checkpoint": 7}})
    return folder


def test_the_manifest_verifies_and_names_a_changed_missing_or_added_file(tmp_path: Path) -> None:
    folder = _backup(tmp_path / "b", datetime.now(UTC))
    body = json.loads((folder / "manifest.json").read_text())
    assert body["audit_heads"]["acme"]["seq"] == 7 and body["fleet_version"] and set(body["files"]) == {
        "postgres.dump", "neo4j/nodes.jsonl"}
    assert backup_manifest.verify(folder).ok
    (folder / "postgres.dump").write_bytes(b"PGDMP archivX")
    (folder / "neo4j" / "nodes.jsonl").unlink()
    (folder / "extra.txt").write_text("x")
    assert backup_manifest.verify(folder).problems == [
        "neo4j/nodes.jsonl: missing", "postgres.dump: sha256 differs from the manifest (changed or damaged)",
        "extra.txt: not in the manifest"]
    assert main(["verify", str(folder)]) == 4
    assert not backup_manifest.verify(tmp_path).ok  # no manifest: not a backup


def test_the_newest_backup_is_the_latest_manifest(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _backup(tmp_path / "zz-old", now - timedelta(days=2))
    _backup(tmp_path / "aa-new", now)
    (tmp_path / "unfinished").mkdir()  # a backup that did not finish has no manifest
    assert backup_manifest.newest(tmp_path) == tmp_path / "aa-new"
    assert backup_manifest.newest(tmp_path / "unfinished") is None


def test_graph_properties_survive_their_json_form() -> None:
    from neo4j.time import Date, DateTime

    props = {"name": "aspirin", "trust": 0.9, "n": 3, "flag": True, "tags": ["a", "b"], "vec": [0.1, 0.2],
             "packed": b"\x00\x01", "at": DateTime(2026, 11, 26, 10, 0, 0, tzinfo=UTC), "day": Date(2026, 11, 26)}
    back = {k: graph.decode(json.loads(json.dumps(graph.encode(v)))) for k, v in props.items()}
    assert back == props
    with pytest.raises(TypeError, match="cannot be backed up"):
        graph.encode(object())


def test_the_kept_redis_prefixes_are_declared_state_not_caches() -> None:
    declared = {k.prefix: k for k in KEYS}
    assert set(redis_state.KEPT) <= set(declared)
    assert not [p for p in redis_state.KEPT if "cache" in p or "result" in p or "memo" in declared[p].purpose]


async def _check(root: Path, hours: float = 24) -> dict[str, object]:
    src = SimpleNamespace(settings=LineageSettings(compliance_backups_dir=str(root)))
    outcome = await backups(src, {"max_age_hours": hours})  # type: ignore[arg-type]
    return {"status": outcome.status, "summary": outcome.summary, "evidence": outcome.evidence}


async def test_the_backups_check_passes_on_a_current_whole_backup_and_fails_otherwise(tmp_path: Path) -> None:
    assert (await _check(tmp_path))["status"] == "fail"  # none at all
    old = _backup(tmp_path / "old", datetime.now(UTC) - timedelta(hours=30))
    stale = await _check(tmp_path)
    assert stale["status"] == "fail" and "older than 24 h" in str(stale["summary"])
    _backup(tmp_path / "new", datetime.now(UTC) - timedelta(hours=1))
    current = await _check(tmp_path)
    assert current["status"] == "pass", current
    assert current["evidence"]["backup"] == str(tmp_path / "new")  # type: ignore[index]
    assert current["evidence"]["audit_heads"] == {"acme": 7}  # type: ignore[index]
    os.truncate(tmp_path / "new" / "postgres.dump", 3)
    damaged = await _check(tmp_path)
    assert damaged["status"] == "fail" and "postgres.dump" in str(damaged["summary"]), damaged
    assert old.is_dir()
