"""`replay evidence (RESPONSE_ID | --tenant T --since … --until …) --out PATH`: an evidence bundle written as a
directory, or as a .tar when PATH ends so. Needs codex-lineage's signing key (it signs the manifest, and a
checkpoint closing the scope when none does yet)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import asyncpg

from codex_lineage.compliance.rules import resolve
from codex_lineage.evidence.gather import ExportError
from codex_lineage.evidence.scope import Scope, build
from codex_lineage.evidence.writer import Material, archive, write_directory
from codex_lineage.export import close_period
from codex_lineage.settings import LineageSettings
from moe_core.audit.signer import Signer, SigningKeyError
from moe_core.audit.store import AuditStore
from moe_core.policy.classes import ClassFile, ClassFileError

ARCHIVES = (".tar",)


async def export_evidence(settings: LineageSettings, out: Path, response_id: str | None, tenant: str | None,
                          since: datetime | None, until: datetime | None) -> int:
    try:
        scope = Scope.of(response_id, tenant, since, until, settings.evidence_max_days)
        _check_target(out)
        try:
            signer = Signer.from_file(settings.audit_signing_key)
            material = Material.from_files(settings.audit_keyring, settings.audit_tsa_chain)
        except (SigningKeyError, OSError) as exc:
            raise ExportError(f"the bundle cannot be signed: {exc}") from None
        store = await AuditStore.connect(settings.audit_writer_dsn or settings.postgres_dsn, settings.audit_schema,
                                         migrate=False)
        try:
            files = await build(store.pool, scope, signer, material, lambda t: close_period(settings, store, t),
                                classes=ClassFile(resolve(settings.data_classes_file)).current())
        except ClassFileError as exc:
            raise ExportError(str(exc)) from None
        except asyncpg.UndefinedTableError:
            raise ExportError(f"the audit store {settings.audit_schema!r} does not exist") from None
        finally:
            await store.close()
    except ExportError as exc:
        print(f"evidence: {exc}", file=sys.stderr)
        return 2
    _save(out, files, scope.name)
    counts = json.loads(files["manifest.json"])["counts"]
    print(f"evidence bundle of {scope.manifest()}: {counts['entries']} entries, {counts['lineage_events']} lineage "
          f"events, {counts['checkpoints']} checkpoints, {len(files)} files -> {out}")
    print(f"verify it offline: python -m moe_audit_verify {out} --keyring <codex-lineage's keyring> "
          "--tsa-chain <the TSA's certificate chain> --published <your own copy of the published checkpoints> "
          "(only --published catches a chain cut back together with its checkpoints)")
    return 0


def _check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty directory")


def _save(out: Path, files: dict[str, bytes], name: str) -> None:
    if out.name.endswith(ARCHIVES):
        out.write_bytes(archive(files, name))
    else:
        write_directory(out, files)
