"""The admin requests aiokafka's admin client lacks, on its own protocol layer: ACLs (describe, create, delete;
the flexible v3 Kafka 4 requires) and SCRAM credentials (AlterUserScramCredentials, salted here with PBKDF2
as the broker expects). Sent as the admin principal of the settings (a super user)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import CompactArray, CompactBytes, CompactString, Int8, Int16, Int32, Schema, TaggedFields

from moe_core.provision.broker_acls import Acl, Operation, Pattern, Resource, group_id
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.settings import FleetSettings

RESOURCE: dict[Resource, int] = {"topic": 2, "group": 3}
PATTERN: dict[Pattern, int] = {"literal": 3, "prefixed": 4}
OPERATION: dict[Operation, int] = {"read": 3, "write": 4, "describe": 8, "describe_configs": 10}
ALLOW, ANY = 3, 1
SCRAM_SHA_512, SCRAM_ITERATIONS = 2, 4096
S = CompactString("utf-8")


def _acl_fields(*names: str) -> tuple[tuple[str, Any], ...]:
    kinds = {"resource_type": Int8, "pattern_type": Int8, "operation": Int8, "permission_type": Int8,
             "error_code": Int16}
    return tuple((n, kinds.get(n, S)) for n in names)


BINDING = ("resource_type", "resource_name", "pattern_type", "principal", "host", "operation", "permission_type")


class CreateAclsResponse_v3(Response):
    API_KEY, API_VERSION = 30, 3
    SCHEMA = Schema(("throttle_time_ms", Int32),
                    ("results", CompactArray(("error_code", Int16), ("error_message", S), ("tags", TaggedFields))),
                    ("tags", TaggedFields))


class CreateAclsRequest_v3(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY, API_VERSION, RESPONSE_TYPE = 30, 3, CreateAclsResponse_v3
    SCHEMA = Schema(("creations", CompactArray(*_acl_fields(*BINDING), ("tags", TaggedFields))), ("tags", TaggedFields))


class DescribeAclsResponse_v3(Response):
    API_KEY, API_VERSION = 29, 3
    SCHEMA = Schema(("throttle_time_ms", Int32), ("error_code", Int16), ("error_message", S),
                    ("resources", CompactArray(
                        *_acl_fields("resource_type", "resource_name", "pattern_type"),
                        ("acls", CompactArray(*_acl_fields("principal", "host", "operation", "permission_type"),
                                              ("tags", TaggedFields))),
                        ("tags", TaggedFields))),
                    ("tags", TaggedFields))


class DescribeAclsRequest_v3(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY, API_VERSION, RESPONSE_TYPE = 29, 3, DescribeAclsResponse_v3
    SCHEMA = Schema(*_acl_fields(*BINDING), ("tags", TaggedFields))


class DeleteAclsResponse_v3(Response):
    API_KEY, API_VERSION = 31, 3
    SCHEMA = Schema(("throttle_time_ms", Int32),
                    ("filter_results", CompactArray(
                        ("error_code", Int16), ("error_message", S),
                        ("matching_acls", CompactArray(*_acl_fields("error_code", "error_message", *BINDING),
                                                       ("tags", TaggedFields))),
                        ("tags", TaggedFields))),
                    ("tags", TaggedFields))


class DeleteAclsRequest_v3(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY, API_VERSION, RESPONSE_TYPE = 31, 3, DeleteAclsResponse_v3
    SCHEMA = Schema(("filters", CompactArray(*_acl_fields(*BINDING), ("tags", TaggedFields))), ("tags", TaggedFields))


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY, API_VERSION = 51, 0
    SCHEMA = Schema(("throttle_time_ms", Int32),
                    ("results", CompactArray(("user_name", S), ("error_code", Int16), ("error_message", S),
                                             ("tags", TaggedFields))),
                    ("tags", TaggedFields))


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY, API_VERSION, RESPONSE_TYPE = 51, 0, AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(("deletions", CompactArray(("name", S), ("mechanism", Int8), ("tags", TaggedFields))),
                    ("upsertions", CompactArray(("name", S), ("mechanism", Int8), ("iterations", Int32),
                                                ("salt", CompactBytes), ("salted_password", CompactBytes),
                                                ("tags", TaggedFields))),
                    ("tags", TaggedFields))


class _Request(Request[Any]):
    """One prepared request struct (the broker's version range is checked by aiokafka against it)."""

    API_KEY = -1

    def __init__(self, struct: RequestStruct) -> None:
        self.struct = struct
        self.API_KEY = struct.API_KEY
        self._CLASSES = (type(struct),)

    def build(self, request_struct_class: Any) -> Any:
        return self.struct


def _binding(acl: Acl) -> tuple[Any, ...]:
    return (RESOURCE[acl.resource], acl.name, PATTERN[acl.pattern], acl.principal, "*", OPERATION[acl.operation],
            ALLOW)


def _check(code: int, message: str | None, what: str) -> None:
    if code:
        raise for_code(code)(f"{what}: {message or ''}")


class KafkaAdmin:
    """An admin connection (the settings' principal, which must be a super user)."""

    def __init__(self, settings: FleetSettings | None = None, bootstrap: str | None = None) -> None:
        self.client = AIOKafkaAdminClient(**client_kwargs(settings, bootstrap=bootstrap), client_id="moe-admin",
                                          request_timeout_ms=30_000)

    async def __aenter__(self) -> KafkaAdmin:
        await self.client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def _send(self, struct: RequestStruct) -> Any:
        return await self.client._send_request(_Request(struct))

    async def acls(self, principal: str | None = None) -> set[Acl]:
        """The ALLOW ACLs of one principal (or of every principal) that this module's vocabulary names."""
        resources = {v: k for k, v in RESOURCE.items()}
        patterns = {v: k for k, v in PATTERN.items()}
        operations = {v: k for k, v in OPERATION.items()}
        response = await self._send(DescribeAclsRequest_v3(ANY, None, ANY, principal, None, ANY, ALLOW, {}))
        _check(response.error_code, response.error_message, "describe ACLs")
        out = set()
        for rtype, rname, ptype, bindings, _ in response.resources:
            for who, _host, op, _perm, _ in bindings:
                if rtype in resources and ptype in patterns and op in operations:
                    out.add(Acl(who, resources[rtype], rname, patterns[ptype], operations[op]))
        return out

    async def create_acls(self, acls: Iterable[Acl]) -> int:
        wanted = [(*_binding(a), {}) for a in acls]
        if not wanted:
            return 0
        response = await self._send(CreateAclsRequest_v3(wanted, {}))
        for code, message, _ in response.results:
            _check(code, message, "create ACL")
        return len(wanted)

    async def delete_acls(self, acls: Iterable[Acl]) -> int:
        filters = [(*_binding(a), {}) for a in acls]
        if not filters:
            return 0
        response = await self._send(DeleteAclsRequest_v3(filters, {}))
        for code, message, _matching, _ in response.filter_results:
            _check(code, message, "delete ACL")
        return len(filters)

    async def upsert_scram(self, users: dict[str, str]) -> None:
        """Create or replace the SCRAM-SHA-512 credential of each user (name -> password)."""
        upsertions: list[tuple[Any, ...]] = []
        for name, password in sorted(users.items()):
            salt = os.urandom(32)
            salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
            upsertions.append((name, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted, {}))
        response = await self._send(AlterUserScramCredentialsRequest_v0([], upsertions, {}))
        for user, code, message, _ in response.results:
            _check(code, message, f"SCRAM credential of {user}")

    async def revoke_scram(self, users: list[str]) -> None:
        """Make the SCRAM-SHA-512 credentials of these users unusable: each is replaced by one for a random
        password nobody keeps. Not a deletion, on purpose: with Kafka 4.1.1 (KRaft), once the metadata log holds a
        RemoveUserScramCredentialRecord, the broker comes back from its next restart with no SCRAM credential at
        all (every principal, the admin included, is refused). Reproduced on the local broker: upsert two users,
        delete one, restart -> both refused, and the admin too; upserts alone survive restarts. A revoked principal
        keeps no ACL (tear_down removes them first), so it can do nothing even with its name."""
        if users:
            await self.upsert_scram({name: secrets.token_urlsafe(32) for name in users})


def _in_namespace(acl: Acl, namespace: str, services: list[str]) -> bool:
    if acl.resource == "topic":
        return acl.name.startswith(f"{namespace}.")
    return acl.name in {group_id(s, namespace) for s in services}


async def apply_acls(acls: list[Acl], *, principals: list[str], namespace: str,
                     settings: FleetSettings | None = None) -> tuple[int, int]:
    """Make the service principals' ACLs of `namespace` exactly `acls`: the missing created, stale ones (of
    these principals, on this namespace's topics and groups) deleted. Returns (created, deleted)."""
    wanted = set(acls)
    async with KafkaAdmin(settings) as admin:
        have = {a for a in await _held(admin, principals) if _in_namespace(a, namespace, principals)}
        created = await admin.create_acls(sorted(wanted - have))
        deleted = await admin.delete_acls(sorted(have - wanted))
        if created or deleted:
            await _applied(admin, wanted, principals=principals, namespace=namespace)
    return created, deleted


async def _held(admin: KafkaAdmin, principals: list[str]) -> set[Acl]:
    """Every ACL of the principals, as the broker lists them."""
    return {a for p in principals for a in await admin.acls(f"User:{p}")}


async def _applied(admin: KafkaAdmin, wanted: set[Acl], *, principals: list[str], namespace: str,
                   timeout_s: float = 30.0) -> None:
    """Wait until the broker authorizes by exactly `wanted`. CreateAcls returns once the controller has them;
    the broker applies the metadata a moment later (on a loaded machine, long enough for a service started at
    once to be refused its first write: ClusterAuthorizationFailed on the idempotent producer's id).
    DescribeAcls is answered from the broker's authorizer, so what it lists is what the broker enforces."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        visible = await _held(admin, principals)
        stale = {a for a in visible if _in_namespace(a, namespace, principals)} - wanted
        if wanted <= visible and not stale:
            return
        if loop.time() > end:
            raise TimeoutError(f"the broker did not apply the ACLs of {namespace!r} within {timeout_s:.0f} s "
                               f"({len(wanted - visible)} missing, {len(stale)} stale)")
        await asyncio.sleep(0.1)
