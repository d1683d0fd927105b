"""The broker set up for a topic namespace, as the admin principal (MOE_KAFKA_USERNAME, a super user): the
topics with their retention, the service principals' SCRAM credentials and their ACLs (generated from the
stage declarations, moe_core.provision.broker_acls; stale ones deleted). Idempotent: fleetctl runs it before the
services start, the chart as a Job, compose as its `kafka-setup` service.

    python -m moe_core.provision.kafka_setup [--namespace moe] [--principals FILE | --principals-env]

FILE (or MOE_KAFKA_PRINCIPALS_FILE): JSON {"<principal>": "<password>", ...}, a principal being the service's
name (`<service>.<namespace>` in another namespace); or a directory with one file per principal holding its
password, named by its service (a mounted Kubernetes Secret; files of no service, such as `admin`, are skipped). Without
it (or --principals-env: MOE_KAFKA_PRINCIPAL_<SERVICE> variables, e.g. MOE_KAFKA_PRINCIPAL_EXPERT_WORKER; compose)
the credentials are left as they are (managed elsewhere, e.g. by the platform's Kafka operator).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from pydantic import SecretStr

from moe_core.provision.broker_acls import declared_grants, fleet_acls, principal_name, principals
from moe_core.provision.kafka_admin import KafkaAdmin, apply_acls
from moe_core.runtime.bus import ensure_fleet_topics
from moe_core.runtime.settings import FleetSettings

log = logging.getLogger(__name__)


async def set_up(settings: FleetSettings, passwords: dict[str, str] | None = None) -> tuple[int, int]:
    """Topics, credentials and ACLs of `settings.topic_namespace`; returns (ACLs created, stale deleted)."""
    namespace = settings.topic_namespace
    await ensure_fleet_topics(settings)
    if passwords:
        unknown = sorted(set(passwords) - set(principals(namespace)))
        if unknown:
            raise ValueError(f"credentials for principals no service declares: {unknown}")
        async with KafkaAdmin(settings) as admin:
            await admin.upsert_scram(passwords)
        await _authenticates(settings, *sorted(passwords.items())[-1])
    return await apply_acls(fleet_acls(namespace), principals=principals(namespace), namespace=namespace,
                            settings=settings)


async def _authenticates(settings: FleetSettings, user: str, password: str, timeout_s: float = 180.0) -> None:
    """Wait until the broker knows a credential just written (the controller has it first; the broker applies the
    metadata a moment later): a service started at once must not be refused. Returns at the first success; the
    bound is for a loaded host (compose's kafka-setup ran out of 30 s at load 40 on 2 cores), then it raises."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError

    from moe_core.runtime.kafka_clients import client_kwargs

    # a stage's credential is SCRAM-SHA-512 (upsert_scram), also when the admin itself logs in over PLAIN (compose)
    user_settings = settings.model_copy(update={"kafka_username": user, "kafka_password": SecretStr(password),
                                                "kafka_sasl_mechanism": "SCRAM-SHA-512"})
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        client = AIOKafkaAdminClient(**client_kwargs(user_settings), request_timeout_ms=5_000)
        try:
            await client.start()
            return
        except KafkaConnectionError:
            if loop.time() > end:
                raise
            await asyncio.sleep(0.2)
        finally:
            await client.close()


async def tear_down(settings: FleetSettings) -> None:
    """A throwaway namespace's principals gone: their ACLs deleted and their SCRAM credentials revoked (replaced
    by unknown passwords, never deleted: KafkaAdmin.revoke_scram says why); its topics are deleted elsewhere.
    Never the fleet's own (`moe`)."""
    if settings.topic_namespace == "moe":
        raise ValueError("the fleet's own namespace is never torn down")
    await apply_acls([], principals=principals(settings.topic_namespace), namespace=settings.topic_namespace,
                     settings=settings)
    async with KafkaAdmin(settings) as admin:
        await admin.revoke_scram(principals(settings.topic_namespace))


def read_principals(path: Path, namespace: str) -> dict[str, str]:
    """{principal: password} from a JSON file, or from a directory of one file per principal."""
    if not path.is_dir():
        return dict(json.loads(path.read_text()))
    services = {g.service for g in declared_grants()}
    return {principal_name(f.name, namespace): f.read_text().strip() for f in sorted(path.iterdir())
            if f.name in services and f.is_file()}


def env_principals(namespace: str) -> dict[str, str]:
    """{principal: password} from MOE_KAFKA_PRINCIPAL_<SERVICE> (upper case, `-` as `_`); every service needs one."""
    out, missing = {}, []
    for grants in declared_grants():
        value = os.environ.get(f"MOE_KAFKA_PRINCIPAL_{grants.service.upper().replace('-', '_')}", "")
        if value:
            out[principal_name(grants.service, namespace)] = value
        else:
            missing.append(grants.service)
    if missing:
        raise SystemExit(f"no MOE_KAFKA_PRINCIPAL_<SERVICE> password for: {', '.join(missing)}")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m moe_core.provision.kafka_setup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default=None, help="topic namespace (default: MOE_TOPIC_NAMESPACE)")
    parser.add_argument("--principals", default=os.environ.get("MOE_KAFKA_PRINCIPALS_FILE", ""),
                        help="JSON file {principal: password}, or a directory of files named by service")
    parser.add_argument("--principals-env", action="store_true",
                        help="the passwords from MOE_KAFKA_PRINCIPAL_<SERVICE> variables")
    args = parser.parse_args(argv)
    settings = FleetSettings()
    if args.namespace:
        settings = settings.model_copy(update={"topic_namespace": args.namespace})
    passwords = (env_principals(settings.topic_namespace) if args.principals_env
                 else read_principals(Path(args.principals), settings.topic_namespace) if args.principals else None)
    created, deleted = asyncio.run(set_up(settings, passwords))
    print(f"kafka set up for namespace {settings.topic_namespace}: topics ensured, "
          f"{len(passwords or {})} credentials, {created} ACLs created, {deleted} stale deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
