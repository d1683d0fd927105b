"""Evidence bundles on the real broker, Postgres and timestamp authority: a request's bundle (`replay evidence RID`)
and a tenant's period as a .tar verify offline with the standalone verifier (no fleet settings, the auditor's
own keyring and TSA chain); every file of a bundle with one byte changed fails; a manifest re-signed with another
key fails; another request of the same tenant stays out of the bundle (links only); the API serves the bundle with
the compliance report and refuses bad input in its envelope."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import pytest

from moe_audit_verify.cli import main as verify_main
from moe_audit_verify.format import manifest_message
from moe_core.audit.signer import Signer
from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.conftest import Keys, LineageFleet
from tests.support.fleet import REPO
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Requests:
    tenant: str
    rid: str  # the request the bundles are of
    other: str  # another request of the same tenant, recorded at the same time
    since: datetime
    until: datetime


def _ask(fleet: LineageFleet, key: str, marker: str) -> str:
    client = openai.OpenAI(base_url=f"{fleet.gateway}/v1", api_key=key, max_retries=0, timeout=60)
    response = client.chat.completions.create(model="moe-orchestrator",
                                              messages=[{"role": "user", "content": f"Why tides? {marker}"}])
    return response.id


@pytest.fixture(scope="module")
def requests(lineage_fleet: LineageFleet, scripted_server: Scripted, infra: dict[str, str]) -> Requests:
    """Two requests of a tenant of its own, sent together (their entries interleave in the tenant's chain), recorded
    completely and covered by a checkpoint."""
    tenant = new_namespace("evidence")
    [key] = new_keys(infra["postgres"], ("evidence", "user", [tenant]))
    markers = [f"E{uuid.uuid4().hex[:8]}" for _ in range(2)]
    scripted_server.script([rule for m in markers for rule in (
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Explain tides {m}"))},
        {"model": "expert-model", "contains": f"Explain tides {m}", "reply": "The moon pulls.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": f"Tides come from the moon's gravity ({m})."})])
    since = datetime.now(UTC) - timedelta(seconds=1)
    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(lambda m: _ask(lineage_fleet, key, m), markers))
    lineage_fleet.wait_settled(tenant, ingests=2)
    return Requests(tenant, ids[0], ids[1].removeprefix("chatcmpl-"), since, datetime.now(UTC))


def _offline(fleet: LineageFleet, bundle: Path, infra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The standalone verifier as an auditor runs it: no fleet settings, the bundle and their own keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOE_")}
    return subprocess.run([sys.executable, "-m", "moe_audit_verify", str(bundle), "--keyring",
                           fleet.env["MOE_AUDIT_KEYRING"], "--tsa-chain", infra["tsa-chain"], "--no-witness"], env=env,
                          cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def _verify_in_process(fleet: LineageFleet, bundle: Path, infra: dict[str, str],
                       capsys: pytest.CaptureFixture[str], *more: str | Path) -> tuple[int, str]:
    code = verify_main([str(bundle), "--keyring", fleet.env["MOE_AUDIT_KEYRING"], "--tsa-chain", infra["tsa-chain"],
                        "--no-witness", *map(str, more)])
    return code, capsys.readouterr().out


def _flip(path: Path, at: Callable[[bytes], int]) -> None:
    data = bytearray(path.read_bytes())
    i = at(bytes(data))
    data[i] = data[i] ^ 0x01
    path.write_bytes(bytes(data))


def test_a_requests_bundle_verifies_offline_and_every_changed_byte_fails(
        lineage_fleet: LineageFleet, requests: Requests, infra: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "bundle"
    done = lineage_fleet.replay("evidence", requests.rid, "--out", str(folder))  # chatcmpl- id, as a user has it
    assert done.returncode == 0, done.stdout + done.stderr
    rid = requests.rid.removeprefix("chatcmpl-")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["scope"] == {"kind": "request", "response_id": rid}
    assert [c["tenant_id"] for c in manifest["chains"]] == [requests.tenant]
    entries = [json.loads(line) for line in (folder / "entries.jsonl").read_text().splitlines()]
    assert entries and {e["content"]["response_id"] for e in entries} == {rid}
    assert {"record", "lineage"} <= {e["content"]["kind"] for e in entries}
    lineage = [json.loads(line) for line in (folder / "lineage.jsonl").read_text().splitlines()]
    assert lineage and all(rid in json.dumps(ev) for ev in lineage)
    links = (folder / "links.jsonl").read_text().splitlines()
    chain = manifest["chains"][0]
    assert len(links) == chain["last_seq"] - chain["first_seq"] + 1 >= len(entries)
    assert all(requests.other not in p.read_text() for p in folder.iterdir())  # the other request: links only

    verified = _offline(lineage_fleet, folder, infra)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"VERIFIED: the manifest's signature and every file's digest; {len(entries)} entries" in verified.stdout
    versions = [json.loads(line) for line in (folder / "versions.jsonl").read_text().splitlines()]
    assert {v["service"] for v in versions} >= {"gateway", "planner", "expert-worker", "merger"}
    assert "versions: planner config sha256:" in verified.stdout and "planner.plan sha256:" in verified.stdout
    # the digests an auditor approved (here: this bundle's own) pass; another planner prompt does not
    approved = json.loads(subprocess.run([sys.executable, "-m", "moe_audit_verify", str(folder), "--keyring",
                                          lineage_fleet.env["MOE_AUDIT_KEYRING"], "--tsa-chain",
                                          infra["tsa-chain"], "--no-witness", "--json"], cwd=REPO, check=False,
                                         capture_output=True, text=True, timeout=120).stdout)["versions"]
    (tmp_path / "approved.json").write_text(json.dumps(approved))
    code, _ = _verify_in_process(lineage_fleet, folder, infra, capsys, "--expect-versions", tmp_path / "approved.json")
    assert code == 0
    approved["planner"]["prompts"]["planner.plan"] = ["sha256:" + "0" * 64]
    (tmp_path / "changed.json").write_text(json.dumps(approved))
    code, out = _verify_in_process(lineage_fleet, folder, infra, capsys, "--expect-versions", tmp_path / "changed.json")
    assert code == 1 and "planner sent prompt template planner.plan sha256:" in out and "not an approved one" in out

    for name in sorted(p.name for p in folder.iterdir()):
        changed = tmp_path / f"changed-{name}"
        shutil.copytree(folder, changed)
        _flip(changed / name, lambda data: len(data) // 2)
        code, out = _verify_in_process(lineage_fleet, changed, infra, capsys)
        assert code != 0 and "VERIFIED" not in out.replace("NOT VERIFIED", ""), (name, out)
        if name != "manifest.json":  # which may no longer be JSON at all: unusable input (exit 2)
            assert code == 1 and "FAILED" in out, (name, out)
        if name not in ("manifest.json", "manifest.sig"):
            assert f"FAILED  {name}: its SHA-256 is not the manifest's" in out, (name, out)


def test_a_bundle_whose_digests_were_redone_and_manifest_re_signed_fails(
        lineage_fleet: LineageFleet, requests: Requests, infra: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Someone without codex-lineage's key changes the answer, recomputes the digests and signs the manifest with a
    key of their own (also copied into the bundle): the auditor's keyring refuses the manifest, and the entry's
    own signature still names the change."""
    folder = tmp_path / "bundle"
    assert lineage_fleet.replay("evidence", requests.rid, "--out", str(folder)).returncode == 0
    lines = [json.loads(line) for line in (folder / "entries.jsonl").read_text().splitlines()]
    answer = next(e for e in lines if e["content"].get("message_type") == "Answer")
    answer["content"]["payload"] = answer["content"]["payload"].replace("moon", "sun")
    (folder / "entries.jsonl").write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in lines))
    forger = Signer.ephemeral()
    (folder / "public-key.pem").write_bytes(forger.public.pem())
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest["key_id"] = forger.key_id
    raw = (json.dumps(manifest, indent=1) + "\n").encode()
    (folder / "manifest.json").write_bytes(raw)
    (folder / "manifest.sig").write_text(forger.sign(manifest_message(raw)) + "\n")
    code, out = _verify_in_process(lineage_fleet, folder, infra, capsys)
    assert code == 1, out
    assert f"FAILED  manifest.json: its signature (manifest.sig) does not match with key {forger.key_id}" in out
    seq = answer["content"]["seq"]
    assert f"FAILED  seq {seq} (" in out and "signature does not match" in out, out
    assert "SHA-256" not in out  # the digests themselves were made to fit


def test_a_periods_bundle_as_an_archive_verifies_and_a_changed_byte_fails(
        lineage_fleet: LineageFleet, requests: Requests, infra: dict[str, str], tmp_path: Path) -> None:
    archive = tmp_path / "period.tar"
    done = lineage_fleet.replay("evidence", "--tenant", requests.tenant, "--since", requests.since.isoformat(),
                                "--until", requests.until.isoformat(), "--out", str(archive))
    assert done.returncode == 0, done.stdout + done.stderr
    with tarfile.open(archive) as tar:
        names = {Path(n).name for n in tar.getnames()}
        manifest = json.loads(tar.extractfile(next(m for m in tar.getmembers()  # type: ignore[union-attr]
                                                   if m.name.endswith("/manifest.json"))).read())
    assert {"manifest.json", "manifest.sig", "entries.jsonl", "checkpoints.jsonl", "lineage.jsonl"} <= names
    assert "links.jsonl" not in names and manifest["scope"]["tenant_id"] == requests.tenant
    assert manifest["counts"]["entries"] > manifest["counts"]["lineage_events"] > 0
    verified = _offline(lineage_fleet, archive, infra)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"tenant {requests.tenant}" in verified.stdout and "VERIFIED" in verified.stdout
    _flip(archive, lambda data: len(data) // 2)
    failed = _offline(lineage_fleet, archive, infra)
    assert failed.returncode in (1, 2) and "\nVERIFIED" not in "\n" + failed.stdout, failed.stdout


def test_the_api_serves_a_bundle_with_the_compliance_report(
        lineage_fleet: LineageFleet, requests: Requests, keys: Keys, infra: dict[str, str], tmp_path: Path) -> None:
    response = lineage_fleet.get("/v1/evidence", keys.admin, response_id=requests.rid)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-tar"
    archive = tmp_path / "api.tar"
    archive.write_bytes(response.content)
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/compliance.json"))
        report = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    assert report["object"] == "compliance.report" and report["frameworks"]
    verified = _offline(lineage_fleet, archive, infra)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_bad_evidence_requests_get_the_apis_envelope(lineage_fleet: LineageFleet, requests: Requests,
                                                      keys: Keys) -> None:
    since, long_after = requests.since.isoformat(), (requests.since + timedelta(days=40)).isoformat()
    cases = [(None, {"response_id": requests.rid}, 401, "invalid_api_key"),
             (keys.user, {"response_id": requests.rid}, 403, "insufficient_role"),
             (keys.admin, {}, 400, "invalid_value"),
             (keys.admin, {"response_id": requests.rid, "tenant_id": requests.tenant}, 400, "invalid_value"),
             (keys.admin, {"tenant_id": requests.tenant, "since": "yesterday", "until": since}, 400,
              "invalid_value"),
             (keys.admin, {"tenant_id": requests.tenant, "since": since, "until": long_after}, 400,
              "invalid_value"),
             (keys.admin, {"response_id": f"r-{uuid.uuid4().hex}"}, 404, "not_found"),
             (keys.admin, {"tenant_id": f"nobody-{uuid.uuid4().hex[:6]}", "since": since,
                           "until": requests.until.isoformat()}, 404, "not_found")]
    for key, params, status, code in cases:
        response = lineage_fleet.get("/v1/evidence", key, **params)
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"]["code"] == code, response.text
    too_long = lineage_fleet.get("/v1/evidence", keys.admin, tenant_id=requests.tenant, since=since,
                                 until=long_after).json()["error"]["message"]
    assert "maximum of 31 days (MOE_EVIDENCE_MAX_DAYS)" in too_long
    empty = lineage_fleet.replay("evidence", "--tenant", requests.tenant, "--out", "/nonexistent/x")
    assert empty.returncode == 2 and "give a response id, or a tenant with since and until" in empty.stderr


def test_a_tenant_admin_exports_only_its_own_tenants_bundles(
        lineage_fleet: LineageFleet, requests: Requests, keys: Keys, infra: dict[str, str], tmp_path: Path) -> None:
    """Another tenant's admin gets the 404 of an unknown request or tenant (by response id and by tenant); the
    tenant's own admin gets its bundle (without the fleet's compliance report, which names every tenant) and it
    verifies offline."""
    [own] = new_keys(infra["postgres"], ("evidence-own-admin", "admin", [requests.tenant]))
    period = {"since": requests.since.isoformat(), "until": requests.until.isoformat()}
    nobody = f"nobody-{uuid.uuid4().hex[:6]}"
    bare = requests.rid.removeprefix("chatcmpl-")  # the id the error names
    for params, unknown in (({"response_id": bare}, {"response_id": f"r-{uuid.uuid4().hex}"}),
                            ({"tenant_id": requests.tenant, **period}, {"tenant_id": nobody, **period})):
        refused = lineage_fleet.get("/v1/evidence", keys.tenant_admin, **params)
        never = lineage_fleet.get("/v1/evidence", keys.tenant_admin, **unknown)
        assert refused.status_code == never.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == never.json()["error"]["code"] == "not_found"
        words = refused.json()["error"]["message"]
        assert words == never.json()["error"]["message"].replace(str(next(iter(unknown.values()))),
                                                                  str(next(iter(params.values())))), words
    for params in ({"response_id": requests.rid}, {"tenant_id": requests.tenant, **period}):
        response = lineage_fleet.get("/v1/evidence", own, **params)
        assert response.status_code == 200, (params, response.text)
        with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
            assert not [m.name for m in tar.getmembers() if m.name.endswith("/compliance.json")]
        archive = tmp_path / "own.tar"
        archive.write_bytes(response.content)
        verified = _offline(lineage_fleet, archive, infra)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    assert lineage_fleet.get("/v1/evidence", keys.admin, tenant_id=requests.tenant, **period).status_code == 200
