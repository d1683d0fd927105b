"""A witness of a test's own: the transparency-dev omniwitness (fleetlib.witness, built from the Go module proxy)
with a fresh key and SQLite file in a temporary directory, on a free port, provisioning its logs from a list this
test process serves (logs/v0, as codex-lineage's GET /v1/witness/logs does). Stopped by the pid it started."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from moe_audit_verify.note import NoteKey
from moe_core.audit.witness import logs_config
from tests.support.uvicorn_thread import bind


@dataclass
class Witness:
    url: str
    key: NoteKey  # its cosignature key (what MOE_AUDIT_WITNESS_KEY holds)
    vkey_file: Path
    db: Path  # its SQLite storage
    logs: dict[str, str] = field(default_factory=dict)  # origin -> the log's vkey, served to the witness

    def provision(self, vkey: str, *origins: str) -> None:
        """Add logs to the served list and wait until the witness has provisioned them (its own SQLite file, read
        here: over HTTP the omniwitness answers an unknown log and a bad signature alike, 500)."""
        self.logs.update({o: vkey for o in origins})
        self.wait_provisioned(*origins)

    def wait_provisioned(self, *origins: str) -> None:
        deadline = time.monotonic() + 30
        while not self._provisioned(origins):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the witness did not provision {origins} within 30 s")
            time.sleep(0.2)

    def _provisioned(self, origins: tuple[str, ...]) -> bool:
        try:
            with closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as db:
                known = {row[0] for row in db.execute("SELECT origin FROM logs")}
        except sqlite3.Error:
            return False
        return set(origins) <= known


def _serve_logs(witness: Witness) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            by_key: dict[str, list[str]] = {}
            for origin, vkey in witness.logs.items():
                by_key.setdefault(vkey, []).append(origin)
            text = "logs/v0\n" + "".join(logs_config(k, o).removeprefix("logs/v0\n") for k, o in by_key.items())
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/logs"


@contextmanager
def running_witness(name: str = "witness.test", logs_url: str | None = None) -> Iterator[Witness]:
    """`logs_url`: where the witness learns its logs (codex-lineage's GET /v1/witness/logs); default: a list this
    process serves (Witness.provision)."""
    from fleetlib import gotools, witness  # deploy/local (tests/conftest puts it on the path)

    gotools.ensure_tool("omniwitness")
    work = Path(tempfile.mkdtemp(prefix="witness-"))
    private, vkey = witness.keypair(name)
    (work / "witness.key").write_text(private + "\n")
    (work / "witness.key").chmod(0o600)
    (work / "witness.vkey").write_text(vkey + "\n")
    sock = bind()
    port = sock.getsockname()[1]
    sock.close()
    result = Witness(f"http://127.0.0.1:{port}", NoteKey.parse(vkey), work / "witness.vkey", work / "witness.db")
    server, served = _serve_logs(result)
    logs_url = logs_url or served
    log = (work / "witness.log").open("wb")
    proc = subprocess.Popen(witness.argv(port, str(work / "witness.key"), str(work / "witness.db"), logs_url,
                                         poll="1s"), stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(result, proc, work)
        yield result
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.shutdown()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def _wait_ready(witness: Witness, proc: subprocess.Popen[bytes], work: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the witness exited {proc.returncode}: {(work / 'witness.log').read_text()[-2000:]}")
        try:
            if httpx.post(f"{witness.url}/add-checkpoint", content=b"", timeout=2).status_code == 400:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the witness did not answer within 60 s")
