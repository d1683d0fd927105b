"""The first five minutes on a fresh clone, through the README's own commands: `make up` exits 0 and prints
a key and a first request; that curl command and the README's Python snippet get answers from the real local
model (non-streamed and streamed, with usage and the model named in the sources); the answer is on the record and
verifies; `make backup`, a change, `make restore` give back a fleet that answers and whose record verifies, and
the rolled-back stretch is cut over as docs/operations.md's runbook says; `make down` stops it all.

The tests run in file order and share one `make up`; the last one is `make down`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.newcomer import backups
from tests.newcomer.first_steps import REPO, MakeUp, make, make_up, readme_first_python

pytestmark = [pytest.mark.e2e, pytest.mark.llm, pytest.mark.timeout(1800)]

sys.path.insert(0, str(REPO / "deploy" / "local"))
from fleetlib import config, osusers, proc  # noqa: E402
from fleetlib.registry import resolve  # noqa: E402

from tests.newcomer import trust_domains  # noqa: E402 (fleetlib)
from tests.support.moe_fields import moe  # noqa: E402 (fleetlib)


@pytest.fixture(scope="module")
def up() -> MakeUp:
    return make_up()


@pytest.fixture(scope="module")
def client(up: MakeUp) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{config.endpoints()['gateway']}/v1", api_key=up.key, max_retries=0,
                         timeout=330)


def _ref() -> int:
    """A number unique to this run, so a second run asks anew instead of hitting the semantic cache."""
    return time.time_ns() % 1_000_000_007


def test_make_up_exits_0_and_prints_a_key_and_a_first_request(up: MakeUp) -> None:
    assert up.returncode == 0, f"make up failed:\n{up.output[-4000:]}"
    assert up.key.startswith("moe-")
    assert f"{config.endpoints()['gateway']}/v1/chat/completions" in up.curl


def test_the_printed_curl_command_gets_an_answer(up: MakeUp) -> None:
    done = subprocess.run(["bash", "-c", up.curl], capture_output=True, text=True, timeout=330, check=False)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["object"] == "chat.completion", body
    assert body["choices"][0]["message"]["content"].strip()


def test_the_readme_python_snippet_runs_as_shown(up: MakeUp) -> None:
    done = subprocess.run([sys.executable, "-c", readme_first_python(up.key)], capture_output=True, text=True,
                          timeout=660, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.strip()) > 20, done.stdout


@pytest.fixture(scope="module")
def answered(client: openai.OpenAI) -> ChatCompletion:
    return client.chat.completions.create(
        model="moe-orchestrator",
        messages=[{"role": "user", "content": f"What is the capital of France? (ref {_ref()})"}],
        max_tokens=64)


def test_the_local_model_answers_non_streamed(answered: ChatCompletion) -> None:
    response = answered
    assert response.choices[0].message.content
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage is not None and response.usage.completion_tokens > 0
    assert moe(response)["sources"][0]["ref"].endswith("smollm2-135m@local")


def test_the_local_model_answers_streamed(client: openai.OpenAI) -> None:
    """A trivial question's answer arrives as the model writes it (its expert streams it: ExpertTask.stream_answer),
    in several pieces, not in one piece at the end."""
    stream = client.chat.completions.create(
        model="moe-orchestrator",
        messages=[{"role": "user", "content": f"What is the population of Japan and its capital city? (ref {_ref()})"}],
        max_tokens=64, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces).strip()
    assert len(pieces) >= 2, pieces
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_the_local_model_does_not_loop(up: MakeUp) -> None:
    """The embedded model's sampling defaults (deploy/local/llm_server.py: the DRY sampler and a repetition
    penalty): greedy, on a question that made it repeat "Kafka-based" eight times in 150 tokens with llama.cpp's
    own defaults, no three words recur more than four times."""
    eps = config.endpoints()
    local = openai.OpenAI(base_url=eps["llm"], api_key="local", max_retries=0, timeout=330)
    response = local.chat.completions.create(
        model=eps["llm-model"], messages=[{"role": "user", "content": "What is Kafka2-based Kafka2-based?"}],
        max_tokens=150, temperature=0)
    words = re.findall(r"\w+", (response.choices[0].message.content or "").lower())
    repeats = Counter(zip(words, words[1:], words[2:], strict=False))
    assert words and max(repeats.values()) <= 4, response.choices[0].message.content


def test_the_fleet_records_and_verifies_the_answer(up: MakeUp, answered: ChatCompletion) -> None:
    """The first answer is recorded by codex-lineage (its own user), checkpointed, timestamped and cosigned by the
    TSA's and the witness's (their own users), verified by the audit API, and by `make replay` (as moe-replay)."""
    verification = _verification(up, answered.id, anchored_within_s=180)  # make up's checkpoint interval: 60 s
    assert verification["verified"] is True and verification["anchored"] is True, verification
    done = _replay_verify(answered.id)
    assert done.returncode == 0 and "verified: " in done.stdout, done.stdout + done.stderr


def _verification(up: MakeUp, response_id: str, anchored_within_s: float = 0) -> dict[str, Any]:
    """The audit API's verification of a request (asked again until it is anchored, for up to the time given)."""
    url = f"{config.endpoints()['control-plane']}/v1/audit/{response_id}"
    deadline = time.monotonic() + anchored_within_s
    while True:
        resp = httpx.get(url, params={"verify": "true"}, headers={"Authorization": f"Bearer {up.key}"}, timeout=60)
        verification = resp.json().get("verification", {}) if resp.status_code == 200 else {}
        if verification.get("anchored") or time.monotonic() > deadline:
            assert resp.status_code == 200, resp.text
            return dict(verification)
        time.sleep(float(resp.headers.get("retry-after") or 3) if resp.status_code == 429 else 3)


def _replay_verify(response_id: str) -> subprocess.CompletedProcess[str]:
    return make("replay", 300, f"ARGS=verify {response_id}")


@dataclass(frozen=True)
class Restored:
    """`make restore`'s outcome, and what was made after the backup: a key and its creation's record."""

    done: subprocess.CompletedProcess[str]
    token: str
    key_record: str  # the response id of the key's audit record


@pytest.fixture(scope="module")
def backup(up: MakeUp) -> Iterator[backups.Backup]:
    made = backups.Backup(make("backup", 300))
    yield made
    if made.done.returncode == 0:  # a test's backup is no operator's: `make restore` would take it as the newest
        shutil.rmtree(made.folder, ignore_errors=True)


def test_make_backup_writes_a_backup_that_verifies(backup: backups.Backup, answered: ChatCompletion) -> None:
    """After the first answer is checkpointed (the test before), `make backup` writes .data/backups/<time>/: every
    store and the manifest, which the backup tool verifies; the manifest names the default tenant's chain head,
    checkpointed; the dumps are the operator's alone, the manifest readable (the backups compliance rule)."""
    assert backup.done.returncode == 0, backup.done.stdout + backup.done.stderr
    assert backup.folder.parent == config.DATA / "backups", backup.folder
    checked = backups.verify(backup.folder)
    assert checked.returncode == 0 and f"backup {backup.folder} verifies" in checked.stdout, (
        checked.stdout + checked.stderr)
    assert backup.kept("default") > 0, backup.manifest["audit_heads"]
    assert set(backup.manifest["parts"]) >= {"kafka", "postgres", "neo4j", "chroma", "redis"}, backup.manifest
    assert (backup.folder / "postgres.dump").stat().st_mode & 0o077 == 0
    assert (backup.folder / "manifest.json").stat().st_mode & 0o777 == 0o644


@pytest.fixture(scope="module")
def restored(up: MakeUp, backup: backups.Backup) -> Restored:
    """A key made after the backup (its creation on the record), then `make restore` (the newest backup: this one)."""
    made = make("keys", 120, "ARGS=create --name after-the-backup")
    assert made.returncode == 0, made.stdout + made.stderr
    token, key_id = made.stdout.strip().splitlines()[-1], re.search(r"created key (\S+) ", made.stderr)
    assert key_id, made.stderr
    gateway = config.endpoints()["gateway"]
    assert _models(gateway, token).status_code == 200
    recorded = backups.audit_record(config.endpoints()["control-plane"], up.key, f"admin-key:{key_id.group(1)}", 120)
    assert recorded.status_code == 200, f"the key's creation is not on the record: {recorded.text}"
    return Restored(make("restore", 900), token, f"admin-key:{key_id.group(1)}")


def _models(gateway: str, key: str) -> httpx.Response:
    return httpx.get(f"{gateway}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_make_restore_puts_the_backup_back_and_the_fleet_answers_again(
        up: MakeUp, client: openai.OpenAI, answered: ChatCompletion, backup: backups.Backup,
        restored: Restored) -> None:
    """`make restore` stops the services, restores the newest backup and starts them again. What the backup did not
    hold is gone (the key made after it: 401); the fleet answers; the first answer verifies, by the audit API and
    by `make replay`. codex-lineage made a last checkpoint of the key's creation at its stop (witnessed): the restore
    names that stretch of the default tenant's record as rolled back (docs/operations.md's runbook), and the
    creation, read again from Kafka (codex-lineage's offsets are the backup's), is on the record again, unanchored:
    no checkpoint is signed over a rolled-back stretch."""
    done = restored.done
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert f"restoring {backup.folder}" in done.stdout, done.stdout
    stretches = backups.rolled_back(done.stderr)
    first, last = stretches.get("default", (0, 0))
    assert first == backup.kept("default") + 1 and last >= first, done.stderr
    refused = _models(config.endpoints()["gateway"], restored.token)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key", refused.text
    again = client.chat.completions.create(model="moe-orchestrator", max_tokens=32, messages=[
        {"role": "user", "content": f"What is the capital of Italy? (ref {_ref()})"}])
    assert again.choices[0].message.content
    verification = _verification(up, answered.id)
    assert verification["verified"] is True and verification["witnessed"] is True, verification
    replayed = _replay_verify(answered.id)
    assert replayed.returncode == 0 and "verified: " in replayed.stdout, replayed.stdout + replayed.stderr
    creation = backups.audit_record(config.endpoints()["control-plane"], up.key, restored.key_record, 120)
    assert creation.status_code == 200, f"the key's creation was not read again from Kafka: {creation.text}"
    assert creation.json()["verification"]["anchored"] is False, creation.json()["verification"]


def test_the_rolled_back_record_continues_under_a_new_log(up: MakeUp, answered: ChatCompletion,
                                                         restored: Restored) -> None:
    """The runbook's step 5, as an operator types it, for each tenant the restore named: `make cut-over-audit-log`
    names the same stretch and codex-lineage starts again, checkpointing the tenant under a new log (so the next
    `make up` of this checkout records as before). The first answer still verifies, by `make replay` too."""
    stretches = backups.rolled_back(restored.done.stderr)
    assert "default" in stretches, restored.done.stderr
    for tenant, stretch in sorted(stretches.items()):
        cut = make("cut-over-audit-log", 300, f"TENANT={tenant}", "REASON=the restore test of the newcomer tier")
        assert cut.returncode == 0, cut.stdout + cut.stderr
        assert backups.cut_over_stretch(cut.stdout, tenant) == stretch, cut.stdout
    verification = _verification(up, answered.id)
    assert verification["verified"] is True and verification["witnessed"] is True, verification
    replayed = _replay_verify(answered.id)
    assert replayed.returncode == 0 and "verified: " in replayed.stdout, replayed.stdout + replayed.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="separate OS users only when make up runs as root")
def test_as_root_each_component_runs_as_its_own_user_and_alone_reads_its_keys(up: MakeUp) -> None:
    """Issue 47: codex-lineage, the TSA, the witness and every stage under an OS user of its own; each one's keys
    (codex-lineage's audit signing key, the TSA's, the witness's, each producer key) readable by it alone: tried
    by reading them as every other component's user and as `make replay`'s."""
    uids = trust_domains.users()
    assert len(set(uids.values())) == len(uids), uids
    for name, uid in uids.items():
        assert trust_domains.running_uid(name) == uid, f"{name} does not run as {osusers.user_of(name)}"
    replay = osusers.ensure(str(osusers.user_of("replay"))).pw_uid
    for name, paths in trust_domains.secrets().items():
        for path in paths:
            assert trust_domains.private(path, uids[name]) is None, trust_domains.private(path, uids[name])
            assert trust_domains.read_as(uids[name], path).returncode == 0, f"{name} cannot read its own {path}"
            for other, uid in [*uids.items(), ("replay", replay)]:
                if other != name:
                    denied = trust_domains.read_as(uid, path)
                    assert denied.returncode != 0 and "Permission denied" in denied.stderr, (other, path)
    lineage = proc.read_pid("codex-lineage")
    environ = trust_domains.read_as(uids["planner"], Path(f"/proc/{lineage}/environ"))
    assert environ.returncode != 0, "the planner's user reads codex-lineage's environment"


def test_make_down_stops_everything_make_up_started(up: MakeUp) -> None:
    done = make("down", 300)
    assert done.returncode == 0, done.stdout + done.stderr
    running = [c.name for c in resolve(["all"], "all") if proc.alive(c.name, c.match())]
    assert running == [], f"still running after make down: {running}"
