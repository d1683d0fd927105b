"""Open Policy Agent for tests: the built binary (fleetlib.gotools) and a private `opa run --server --watch`
on a free port over a directory of its own (a copy of policy/opa a test may break), or over a signed bundle of the
modules (bundle_engine), stopped afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO / "policy" / "opa"
SWITCH = "MOE_OPA_BUNDLE"  # fleetlib.opa_bundle's: the local fleet's OPA on the control plane's signed bundle
_operator: list[str | None] = []  # SWITCH as the session found it


def tests_share_the_files() -> None:
    """The shared infrastructure's OPA, when a test session starts it, watches policy/opa (MOE_OPA_BUNDLE=false
    unless set): it decides for every test's own fleet, each with a control plane of its own on a port of its own,
    while OPA polls one control plane's bundle, and under a bundle owning every path OPA refuses the module puts of
    those fleets' approvals. Fleets on the bundle path run an OPA of their own (polling_engine, bundle_engine;
    tests/lineage/control_plane/test_egress_bundle.py); `make up` in tests/newcomer gets the operator's default."""
    if not _operator:
        _operator.append(os.environ.get(SWITCH))
    os.environ.setdefault(SWITCH, "false")


def operator_env() -> dict[str, str]:
    """The environment as the session found it for SWITCH: what `make up` gets where an operator runs it."""
    env = dict(os.environ)
    found = _operator[0] if _operator else env.get(SWITCH)
    if found is None:
        env.pop(SWITCH, None)
    else:
        env[SWITCH] = found
    return env


def binary() -> str:
    """The `opa` binary `make install` builds (built here if missing: the first run takes minutes)."""
    from fleetlib import gotools  # deploy/local (tests/conftest puts it on the path)

    gotools.ensure_tool("opa")
    return str(gotools.binary("opa"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


@dataclass
class Engine:
    url: str
    policy_dir: Path
    log: Path
    argv: list[str] = field(default_factory=list, repr=False)
    env: dict[str, str] | None = field(default=None, repr=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start OPA (again, on the same port and files) and wait until its /health is 200."""
        with self.log.open("ab") as out:
            self.proc = proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"opa exited ({proc.returncode}): {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"opa did not become ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """A real restart of the OPA process: what it held in memory (a pushed module) is gone, its files loaded."""
        self.stop()
        self.start()


SYSTEM_DIR = REPO / "policy" / "opa-system"


@contextmanager
def private_engine(work: Path, token: str = "") -> Iterator[Engine]:
    """OPA watching a copy of policy/opa in `work`, ready (its /health 200) before it is yielded. With a token,
    as the chart runs it with opa.auth: --authentication=token --authorization=basic and policy/opa-system, the
    token in its environment (MOE_OPA_TOKEN)."""
    policies = work / "opa"
    shutil.copytree(POLICY_DIR, policies)
    auth = ["--authentication=token", "--authorization=basic", str(SYSTEM_DIR)] if token else []
    with _running(work, policies, ["--watch", "--ignore", "*_test.rego", str(policies), *auth], token) as engine:
        yield engine


@contextmanager
def _running(work: Path, policies: Path, args: list[str], token: str = "", port: int = 0) -> Iterator[Engine]:
    """`opa run --server` with `args` on `port` (else a free one), logging to work/opa.log; ready, then stopped."""
    port = port or free_port()
    env = {**os.environ, "MOE_OPA_TOKEN": token} if token else None
    argv = [binary(), "run", "--server", "--addr", f"127.0.0.1:{port}", "--skip-version-check",
            "--disable-telemetry", "--log-format", "json", *args]
    engine = Engine(f"http://127.0.0.1:{port}", policies, work / "opa.log", argv, env)
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()


def policy_modules() -> list[tuple[str, bytes]]:
    """policy/opa's decision modules as OPA loads them (its tests left out): (file name, text)."""
    return [(p.name, p.read_bytes()) for p in sorted(POLICY_DIR.glob("*.rego")) if not p.name.endswith("_test.rego")]


def write_bundle(path: Path, modules: list[tuple[str, bytes]], private_key_pem: bytes,
                 roots: tuple[str, ...] = ("",)) -> None:
    """A signed bundle of `modules` put at `path` at once (a rename: a watching OPA never reads half of it)."""
    from moe_core.policy.bundle import signed_bundle

    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(signed_bundle(modules, private_key_pem, roots=roots))
    partial.rename(path)


@contextmanager
def bundle_engine(work: Path, modules: list[tuple[str, bytes]],
                  roots: tuple[str, ...] = ("",)) -> Iterator[tuple[Engine, bytes]]:
    """OPA serving a bundle of `modules` signed with a new RSA key (`--bundle --verification-key`, watched: a new
    bundle written with write_bundle and that key is loaded), ready; yielded with the key (PEM)."""
    private_file, public_pem = rsa_keys(work)
    private = private_file.read_bytes()
    public = work / "bundle-key.pem"
    public.write_text(public_pem)
    (work / "bundle").mkdir()  # a directory of its own: OPA watches the bundle's directory, and writes its log
    bundle = work / "bundle" / "policies.tar.gz"
    write_bundle(bundle, modules, private, roots)
    with _running(work, bundle, ["--watch", "--bundle", "--verification-key", str(public), str(bundle)]) as engine:
        yield engine, private


def rsa_keys(work: Path) -> tuple[Path, str]:
    """A new RSA key pair for a bundle: the private key's file (0600, as MOE_OPA_BUNDLE_SIGNING_KEY) and the public
    key (PEM text, what OPA holds)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = work / "bundle-signing.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


@contextmanager
def polling_engine(work: Path, config: dict[str, object], token: str = "", port: int = 0) -> Iterator[Engine]:
    """OPA run with `--config-file` (moe_core.policy.bundle.opa_config: it polls the control plane's
    signed bundle), no policy files of its own; with a token, as the chart runs it with opa.auth (the authorization
    module comes in the bundle). Yielded once /health is 200 (it may not hold the bundle yet). `port`: one chosen
    before (a fleet given OPA's url first), else a free one."""
    (work / "opa-config.json").write_text(json.dumps(config))
    auth = ["--authentication=token", "--authorization=basic"] if token else []
    with _running(work, work, ["--config-file", str(work / "opa-config.json"), *auth], token, port) as engine:
        yield engine
