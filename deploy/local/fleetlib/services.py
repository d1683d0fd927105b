"""The fleet's own microservices: the registry's (moe_core.stage.registry), each run as `python -m <package>`
and ready when its `/ready` answers 200. Adding one is its registry row (and its folder)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import moe_core.stage.registry as stage_registry

from . import audit_key, config, opa_bundle, osusers, secrets
from .component import Component

# component name -> (python module run with `python -m`, readiness path)
SERVICES: dict[str, tuple[str, str]] = {s.name: (s.package, "/ready") for s in stage_registry.FLEET}
def service_env(name: str) -> dict[str, str]:
    """Endpoint defaults < .data/fleet.env < the caller's environment."""
    eps = config.endpoints()
    env = {var: eps[key] for var, key in config.ENDPOINT_ENV.items()}
    env[config.PORT_DEFAULTS[name][0]] = str(config.port(name))
    env["MOE_HTTP_HOST"] = config.HOST
    env["MOE_HTTP_PORT"] = str(config.port(name))
    if name == "gateway":
        env["MOE_GATEWAY_WORKERS"] = "2"  # more than one replica, sharing the port
    if name in config.PG_SERVICES:  # its own role, with the grants moe_core.runtime.pg.tables declares
        env["MOE_POSTGRES_DSN"] = eps[f"postgres-{name}"]
    if name == "codex-lineage":  # the only holder of the audit signing key and of the audit store's writer role
        private, _ = audit_key.ensure()
        env["MOE_AUDIT_SIGNING_KEY"] = str(private)
        env["MOE_AUDIT_CHECKPOINT_FILE"] = str(audit_key.CHECKPOINTS)
        env["MOE_AUDIT_WRITER_DSN"] = eps["postgres-codex-lineage"]
        env["MOE_AUDIT_WRITER_ROLE"] = config.CODEX_LINEAGE_ROLE
        env["MOE_AUDIT_READER_ROLES"] = f"{config.POSTGRES_USER},{config.AUDIT_READER_ROLE}"  # the operator, replay
    if name == "control-plane":  # the only holder of OPA's bundle signing key (when the bundle is on)
        env.update(opa_bundle.control_plane_env())
    # The embedded model runs on CPU: planner, experts, thinking and judge in turn take a while on 2 cores.
    env["MOE_REQUEST_TIMEOUT_S"] = env["MOE_LOCAL_LLM_TIMEOUT_S"] = "300"  # a model call as long as its request
    env.update(config.read_env_file())
    env.update(os.environ)
    env.update(kafka_principal_env(name))  # a service's broker identity is its own, whatever the caller's is
    env.update(producer_env(name))  # and so is the key it signs what it publishes with
    paths = [str(config.REPO / "libs")] + [str(p) for p in sorted((config.REPO / "services").glob("*"))]
    env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [env.get("PYTHONPATH")])])
    return env


# codex-lineage's alone: what `make replay` never gets (the signing key, its writer role, the audit store's owner)
REPLAY_WITHHELD = ("MOE_AUDIT_SIGNING_KEY", "MOE_AUDIT_WRITER_DSN", "MOE_AUDIT_WRITER_ROLE", "MOE_AUDIT_MIGRATOR_DSN",
                   "MOE_AUDIT_READER_ROLES", "MOE_AUDIT_CHECKPOINT_FILE")


def replay_env() -> dict[str, str]:
    """`make replay`'s environment: codex-lineage's endpoints and broker identity (it reads every topic) with the
    audit store's read-only role and the public anchors only. It cannot sign, insert, or alter the record: a period
    without a closing checkpoint yet is closed by codex-lineage (its next checkpoint, or the evidence API)."""
    env = {k: v for k, v in service_env("codex-lineage").items() if k not in REPLAY_WITHHELD}
    env["MOE_POSTGRES_DSN"] = config.endpoints()["postgres-audit-reader"]
    env["MOE_SERVICE_NAME"] = "replay"
    return env


def _principal(name: str) -> str:
    from moe_core.provision.broker_acls import principal_name

    namespace = os.environ.get("MOE_TOPIC_NAMESPACE") or config.read_env_file().get("MOE_TOPIC_NAMESPACE", "moe")
    return principal_name(name, namespace)


def kafka_principal_env(name: str) -> dict[str, str]:
    """Service `name`'s own Kafka principal (its ACLs: moe_core.provision.broker_acls); topics are the admin's to
    make."""
    principal = _principal(name)
    return {"MOE_KAFKA_USERNAME": principal, "MOE_KAFKA_PASSWORD": secrets.generate(f"kafka-{principal}"),
            "MOE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "MOE_KAFKA_CREATE_TOPICS": "false"}


PRODUCER_KEYS = config.DATA / "producer-keys"
_PRODUCERS_LOCK = threading.Lock()


def producer_env(name: str) -> dict[str, str]:
    """Service `name`'s own producer signing key and the list of every producer's public key (generated once into
    .data/producer-keys/ from the stage declarations, moe_core.stage.producers; the list rewritten per fleetctl run,
    so a declaration's change is in it)."""
    from moe_core.stage import producers

    with _PRODUCERS_LOCK:
        listing = producers.generate(PRODUCER_KEYS)
    return {"MOE_PRODUCER_SIGNING_KEY": str(producers.key_file(PRODUCER_KEYS, name)),
            "MOE_PRODUCER_KEYS": str(listing)}


_KAFKA_SET_UP: list[bool] = []
_KAFKA_LOCK = threading.Lock()


def set_up_kafka() -> None:
    """Once per fleetctl run, before the first service: the namespace's topics, every service principal's SCRAM
    credential and its ACLs (moe_core.provision.kafka_setup, as the admin)."""
    with _KAFKA_LOCK:
        if _KAFKA_SET_UP:
            return
        passwords = {_principal(name): secrets.generate(f"kafka-{_principal(name)}") for name in SERVICES}
        path = config.DATA / "kafka" / "principals.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(passwords))
        env = {**service_env("gateway"), **config.kafka_admin_env(), "MOE_KAFKA_CREATE_TOPICS": "true",
               "MOE_SERVICE_NAME": "kafka-setup"}
        done = subprocess.run([str(config.PYTHON), "-m", "moe_core.provision.kafka_setup", "--principals", str(path)],  # noqa: S603
                              env=env, capture_output=True, text=True, check=False, cwd=config.REPO)
        if done.returncode != 0:
            raise RuntimeError(f"the broker's set-up (topics, principals, ACLs) failed: {done.stdout}{done.stderr}")
        _KAFKA_SET_UP.append(True)


def run(name: str, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run an operator command (argv, no shell) with service `name`'s environment, as `make up` starts it:
    the one way a local command that talks to a store gets its settings (generated passwords included)."""
    return subprocess.run(list(argv), env=service_env(name), capture_output=True, text=True,  # noqa: S603
                          check=False, cwd=config.REPO, **kwargs)  # type: ignore[call-overload]


def _http_check(name: str, path: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        import httpx

        async with httpx.AsyncClient(timeout=3) as client:
            resp = await client.get(f"http://{config.HOST}:{config.port(name)}{path}")
            if resp.status_code != 200:
                raise RuntimeError(f"GET {path} returned {resp.status_code}")

    return check


def migrate_audit_store() -> None:
    """The audit store's schema and grants, made by its migrator role before codex-lineage starts (codex-lineage
    itself may only read and insert)."""
    import asyncio
    import subprocess

    from . import postgres

    env = service_env("codex-lineage")
    asyncio.run(postgres.adopt_audit_schema(env.get("MOE_AUDIT_SCHEMA", "audit")))
    env["MOE_AUDIT_MIGRATOR_DSN"] = config.endpoints()["postgres-audit-migrator"]
    done = subprocess.run([str(config.PYTHON), "-m", "codex_lineage.migrate"], env=env, capture_output=True,  # noqa: S603
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the audit store's migration failed: {done.stdout}{done.stderr}")


_MIGRATED: list[bool] = []  # once per fleetctl run (its services are prepared side by side)
_MIGRATING = threading.Lock()


def migrate_fleet_store() -> None:
    """The fleet store's tables and every service's grants (moe_core.runtime.pg.migrate), then the audit store's
    (codex_lineage.migrate: the gateway reads it too), each made by its migrator role before a service that
    uses Postgres starts; stores made before those roles existed are adopted first. Once per process."""
    with _MIGRATING:
        if not _MIGRATED:
            _migrate_fleet_store()
            migrate_audit_store()
            _MIGRATED.append(True)


def _migrate_fleet_store() -> None:
    import asyncio

    from . import postgres

    asyncio.run(postgres.ensure_role_and_db())  # a service added since the store was made gets its role
    asyncio.run(postgres.adopt_fleet_tables())
    env = service_env("gateway")
    env["MOE_PG_MIGRATOR_DSN"] = config.endpoints()["postgres-migrator"]
    done = subprocess.run([str(config.PYTHON), "-m", "moe_core.runtime.pg.migrate"], env=env, capture_output=True,  # noqa: S603
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the fleet store's migration failed: {done.stdout}{done.stderr}")


def _prepare(name: str, module: str) -> list[str]:
    set_up_kafka()
    if name in config.PG_SERVICES:
        migrate_fleet_store()
    own_keys(name)
    return [str(config.PYTHON), "-m", module]


EMBEDDINGS = config.DATA / "embeddings"
_EMBEDDINGS_LOCK = threading.Lock()


def shared_embeddings() -> dict[str, str]:
    """As root: the converted embedding model (moe_core.knowledge.embedding_model) and the semantic cache's static
    table (moe_core.knowledge.static_embedding: about a minute of CPU, once), built once by fleetctl into
    .data/embeddings/ (root's, readable by all), so that no component user converts it again in a HOME of its own,
    nor can plant a model for the others."""
    if not osusers.enabled():
        return {}
    from moe_core.knowledge import embedding_model, static_embedding
    from moe_core.knowledge.embeddings import model_files

    with _EMBEDDINGS_LOCK:
        before = os.environ.get("MOE_EMBEDDING_CACHE_DIR")
        os.environ["MOE_EMBEDDING_CACHE_DIR"] = str(EMBEDDINGS)
        try:
            built = embedding_model.model_path(model_files()[0])  # when missing (the file's name is its digest's)
            if isinstance(built, Path):
                built.chmod(0o644)  # made 0600 (a temporary file renamed): read by every component user
            static_embedding.table_path()  # when missing (named by the files' digests); made 0644
        finally:
            if before is None:
                os.environ.pop("MOE_EMBEDDING_CACHE_DIR")
            else:
                os.environ["MOE_EMBEDDING_CACHE_DIR"] = before
    return {"MOE_EMBEDDING_CACHE_DIR": str(EMBEDDINGS)}


def own_keys(name: str) -> None:
    """As root, what service `name` alone may read is its OS user's, 0600 (fleetlib.osusers): its producer signing
    key, and for codex-lineage the audit signing key and checkpoint file (their folder: public keys, keyring)."""
    user = osusers.user_of(name)
    if user is None:
        return
    osusers.ensure(user)
    osusers.own(Path(producer_env(name)["MOE_PRODUCER_SIGNING_KEY"]), user, 0o600)  # made when missing
    if name == "control-plane" and opa_bundle.enabled():
        opa_bundle.ensure_keys()
        osusers.private_folder(opa_bundle.KEY_DIR, user, [opa_bundle.PRIVATE])
    if name == "codex-lineage":
        audit_key.ensure()
        osusers.private_folder(audit_key.KEY_DIR, user, [audit_key.PRIVATE, audit_key.CHECKPOINTS])


def _component(name: str, module: str, ready_path: str) -> Component:
    return Component(
        name=name, group="services", port_key=name, deadline=180,
        prepare=lambda: _prepare(name, module),
        check=_http_check(name, ready_path),
        match=lambda: f"-m {module}",
        env=lambda: {**service_env(name), **osusers.home(osusers.user_of(name)), **shared_embeddings()},
        ready=f"`GET {ready_path}` 200",
        user=osusers.user_of(name),
    )


COMPONENTS = [_component(name, module, path) for name, (module, path) in SERVICES.items()]
