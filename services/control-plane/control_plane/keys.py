"""Key management CLI: python -m control_plane.keys create|rotate|revoke|list|ensure. Every change is an audit
event (actor cli:<operating-system account>, from the process's user id, not from $USER), as the admin API's are,
and a change that cannot be recorded does not happen: a key made while Kafka is unreachable is revoked again and
its secret never printed (exit 1). It is also the one way to give a person a key without their own sign-in
(`--person NAME` makes the person, `--principal p-…` an existing one): the admin API mints no key for another
person (policy/opa/admin.rego), so this host-level bootstrap is where a person's first key can come from."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import asyncpg
from redis.exceptions import RedisError

from control_plane.admin.key_audit import change_event, publish_alone
from control_plane.admin.key_audit import reachable as broker_reachable
from control_plane.settings import ControlPlaneSettings
from moe_core.access.key_events import KeyEvents
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.principals import Principals
from moe_core.contracts import AuditEvent
from moe_core.runtime.publish_once import os_actor
from moe_core.runtime.stores import redis_client


async def _create(store: KeyStore, args: argparse.Namespace) -> int:
    tenants = args.tenant or ["default"]
    missing = [t for t in tenants if await store.tenant(t) is None]
    if missing and not args.new_tenant:  # a typo would otherwise make a tenant of its own
        print(f"no tenant {', '.join(map(repr, missing))}: create it with the admin API (docs/api.md) or pass "
              "--new-tenant to create it here", file=sys.stderr)
        return 1
    holder = await _holder(store, args, tenants)
    if holder is None:
        return 1
    key, token = await store.create(args.name, args.role, tenants, principal_id=holder or None)
    try:
        for tenant in missing:  # made with the key: an audit event of its own, as the admin API's
            await _publish(change_event(os_actor(), "tenant.created", f"tenant:{tenant}", tenant,
                                        {"name": "", "via": "keys create --new-tenant"}))
            print(f"created tenant {tenant!r}", file=sys.stderr)
        await _audit("key.created", key)
    except Unrecorded as exc:  # never a key without its record: revoked again, its secret never shown
        await store.revoke(key.id)
        print(f"{exc}: key {key.id} revoked again, its secret not printed", file=sys.stderr)
        return 1
    print(token)
    print(f"created key {key.id} ({key.role}, tenants {', '.join(key.tenant_ids)})", file=sys.stderr)
    return 0


async def _rotate(store: KeyStore, args: argparse.Namespace) -> int:
    if not await reachable():  # asked first: a rotation cannot be undone
        print(f"{Unrecorded.MESSAGE}: the key was not rotated", file=sys.stderr)
        return 1
    rotated = await store.rotate(args.id)
    if rotated is None:
        print(f"no active key with id {args.id}", file=sys.stderr)
        return 1
    await _announce(f"key:{args.id}")  # the old secret is refused by every replica at once
    try:
        await _audit("key.rotated", rotated[0])
    except Unrecorded as exc:  # the new secret is withheld: nobody holds an unrecorded secret
        print(f"{exc}: {args.id} was rotated but its new secret is not printed; rotate it again", file=sys.stderr)
        return 1
    print(rotated[1])
    print(f"rotated {args.id}: the old secret no longer works", file=sys.stderr)
    return 0


async def _revoke(store: KeyStore, args: argparse.Namespace) -> int:
    if not await store.revoke(args.id):
        print(f"no active key with id {args.id}", file=sys.stderr)
        return 1
    await _announce(f"key:{args.id}")
    revoked = await store.get(args.id)
    assert revoked is not None
    try:
        await _audit("key.revoked", revoked)
    except Unrecorded as exc:  # revoked stays revoked (the safe side), said loudly
        print(f"{exc}: {args.id} IS revoked, but the revocation is not on the record", file=sys.stderr)
        return 1
    print(f"revoked {args.id}", file=sys.stderr)
    return 0


async def _list(store: KeyStore, args: argparse.Namespace) -> int:
    for key in await store.keys():
        state = "revoked" if key.revoked_at else "expired" if key.expired() else "active"
        print(f"{key.id}\t{key.name}\t{key.role}\t{','.join(key.tenant_ids)}\t{state}")
    return 0


async def _ensure_cmd(store: KeyStore, args: argparse.Namespace) -> int:
    print(await _ensure(store, Path(args.file), args.name))
    return 0


COMMANDS = {"create": _create, "rotate": _rotate, "revoke": _revoke, "list": _list, "ensure": _ensure_cmd}


async def _main(args: argparse.Namespace) -> int:
    store = await KeyStore.connect(ControlPlaneSettings().postgres_dsn, cache_ttl_s=0)
    try:
        return await COMMANDS[args.cmd](store, args)
    finally:
        await store.close()


async def _announce(subject: str) -> None:
    """Tell the running gateway replicas (their key caches) at once, as the admin API does."""
    settings = ControlPlaneSettings()
    redis = redis_client(settings.redis_url, settings.redis_ca_file)
    try:
        await KeyEvents(redis, settings.topic_namespace, lambda: None).announce(subject)
    except (RedisError, OSError) as exc:
        print(f"gateways not told (their caches expire within MOE_KEY_CACHE_TTL_S): {exc}", file=sys.stderr)
    finally:
        await redis.aclose()


class Unrecorded(Exception):
    MESSAGE = "the audit event could not be published (Kafka unreachable)"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


async def _audit(action: str, key: ApiKey) -> None:
    details = {"name": key.name, "role": key.role, "tenant_ids": list(key.tenant_ids), "principal": key.principal_id}
    await _publish(change_event(os_actor(), action, f"key:{key.id}", key.default_tenant, details))


async def _publish(event: AuditEvent) -> None:
    if not await publish_alone(ControlPlaneSettings(), event):
        raise Unrecorded


async def reachable() -> bool:
    """Whether an audit event can be published now (a rotation asks before it happens)."""
    return await broker_reachable(ControlPlaneSettings())


async def _holder(store: KeyStore, args: argparse.Namespace, tenants: list[str]) -> str | None:
    """The principal the new key belongs to: --principal (an existing one of the key's tenants), a new person
    (--person), or "" (a new service account of its own); None: refused (said on stderr)."""
    principals = Principals(store.pool)
    if args.person:
        if (args.oidc_issuer is None) != (args.oidc_subject is None):
            print("--oidc-issuer and --oidc-subject go together (the ID token's iss and sub)", file=sys.stderr)
            return None
        person = await principals.create("person", tenants[0], args.person, email=args.email,
                                         issuer=args.oidc_issuer, subject=args.oidc_subject)
        await _publish(change_event(os_actor(), "principal.created", f"principal:{person.id}", person.tenant,
                                    {"kind": "person", "display_name": args.person, "email": args.email,
                                     "oidc_issuer": args.oidc_issuer, "oidc_subject": args.oidc_subject,
                                     "via": "keys create --person"}))
        print(f"created person {person.id} ({args.person})", file=sys.stderr)
        return person.id
    if args.principal:
        found = await principals.get(args.principal)
        if found is None or found.disabled_at is not None or found.tenant not in tenants:
            print(f"no active principal {args.principal!r} of tenant {', '.join(tenants)}", file=sys.stderr)
            return None
        return found.id
    return ""


async def _ensure(store: KeyStore, path: Path, name: str) -> str:
    """Print the local operator's key kept in `path`, creating a new one if it is missing or no longer valid.
    It is the fleet operator's (role operator: every tenant and key, docs/security.md); a key of the tenant-admin
    role left there by an earlier version is replaced (and stays valid for its tenant until revoked)."""
    token = path.read_text().strip() if path.exists() else ""  # noqa: ASYNC240 (a tiny local file)
    if token:
        key = await store.verify(token)
        if key is not None and key.revoked_at is None and not key.expired() and key.role == "operator":
            return token
    key, token = await store.create(name, "operator", ["default"])
    try:
        await _audit("key.created", key)
    except Unrecorded:
        await store.revoke(key.id)
        raise
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m control_plane.keys", description="Manage gateway API keys")
    sub = parser.add_subparsers(dest="cmd", required=True)
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=["admin", "user", "operator"], default="user",
                        help="admin: a tenant admin of --tenant; operator: the fleet operator")
    create.add_argument("--tenant", action="append", help="tenant id (repeatable; default: default)")
    create.add_argument("--new-tenant", action="store_true", help="create the tenants that do not exist yet")
    holder = create.add_mutually_exclusive_group()
    holder.add_argument("--principal", help="the key's principal (an existing person or service account of --tenant)")
    holder.add_argument("--person", metavar="NAME", help="make a person of the first --tenant and the key theirs")
    create.add_argument("--email", help="with --person: their e-mail address (contact data: it binds nothing)")
    create.add_argument("--oidc-issuer", help="with --person: their identity provider (the ID token's iss)")
    create.add_argument("--oidc-subject", help="with --person: their subject there (the ID token's sub): the "
                        "console sign-in that is this person")
    rotate = sub.add_parser("rotate", help="a new secret for a key (printed once); the old one stops working")
    rotate.add_argument("id")
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    sub.add_parser("list", help="list keys (never the secrets)")
    ensure = sub.add_parser("ensure", help="print a valid local operator key kept in a file, creating it if needed")
    ensure.add_argument("--file", required=True)
    ensure.add_argument("--name", default="local-admin")
    try:
        return asyncio.run(_main(parser.parse_args()))
    except asyncpg.UndefinedTableError as exc:  # the gateway no longer makes its tables
        print(f"the key store's tables do not exist ({exc}): run python -m moe_core.runtime.pg.migrate as the migrator "
              "role first (make key, make up and the chart's pg-migrate Job do)", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): nothing to report about the store
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except (OSError, asyncpg.PostgresError) as exc:  # unreachable, or refused (the wrong role or password)
        dsn = ControlPlaneSettings().postgres_dsn
        where = dsn.rsplit("@", 1)[-1] if "@" in dsn else dsn  # never the password
        print(f"cannot use the key store at {where}: {exc}. With the local fleet run `make keys ARGS=\"...\"` "
              "(it brings the control plane's credentials); elsewhere set MOE_POSTGRES_DSN", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
