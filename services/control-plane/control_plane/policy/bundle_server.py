"""OPA's policy bundle, built, signed and served by the control plane (issue 52): the Rego files of
MOE_OPA_POLICY_DIR (their *_test.rego left out), OPA's own API authorization (MOE_OPA_SYSTEM_POLICY_DIR), and in
place of the reviewed egress module the approved egress change in force (egress_policy_changes.in_force), signed
with MOE_OPA_BUNDLE_SIGNING_KEY (moe_core.policy.bundle: revision = the version of its decision modules, roots
[""]). OPA polls

    GET /v1/opa/bundles/policies.tar.gz     (If-None-Match: the revision it holds -> 304; else 200, ETag the revision)

long-polled (OPA's `long_polling_timeout_seconds`: it sends `Prefer: wait=<s>`): a request for the revision OPA
holds is held until the bundle changes (answered at once when an approval on this replica commits, else seen by a
check every LONG_POLL_CHECK_S: another replica's approval) or the wait ends (304, after LONG_POLL_MAX_S at most:
a stopping control plane waits that long at most for it); the answers then say
`Content-Type: application/vnd.openpolicyagent.bundles`, which keeps OPA long-polling. An approval so waits for OPA
in tenths of a second instead of OPA's next poll (1-5 s).

with OPA's token (MOE_OPA_TOKEN, when set) and loads a bundle only when the public key verifies it. Each request
builds what is in force now (the change read from Postgres, the files from disk: a bundle is signed again only when
they changed), so every replica serves the same revision from an approval's commit on, and none serves an older one
after it. A newer reviewed egress file wins over an approved change (as control_plane.policy.egress_reconcile: the
change is superseded there). Under a bundle OPA refuses `PUT /v1/policies`: no module is put beside it, so what
decides is only what was approved or reviewed (docs/runbooks.md)."""

from __future__ import annotations

import asyncio
import hmac
import re
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi import APIRouter, Request, Response

from control_plane.policy.api import rego_files
from control_plane.policy.egress_reviewed import reviewed_file
from control_plane.policy.egress_simulation import EGRESS_PACKAGE
from control_plane.policy.settings import PolicySettings
from moe_core.policy import PolicyClient, PolicyUnavailable
from moe_core.policy.bundle import NAME, signed_bundle
from moe_core.policy.opa import SYSTEM_PACKAGE, version_of
from moe_core.runtime.openai_error import OpenAIError

POLL_S = 0.05  # how often an approval asks OPA which revision it holds (OPA's long poll loads it at once)
LONG_POLL_CHECK_S = 1.0  # how often a held poll reads what is in force (another replica's approval)
# the longest a poll is held, whatever OPA asks: below MOE_SHUTDOWN_GRACE_S (6 s), so a stopping control plane waits
# at most this for a held poll to end (uvicorn waits for open requests and has no signal for them)
LONG_POLL_MAX_S = 5.0
LONG_POLL_TYPE = "application/vnd.openpolicyagent.bundles"  # what tells OPA the server long-polls
WAIT = re.compile(r"(?:^|[;,\s])wait=(\d+)")


class BundleKeyError(RuntimeError):
    """The bundle's signing key cannot be used (missing, readable by every user, not an RSA PEM key)."""


def signing_key(path: str) -> bytes:
    """The RSA private key at `path` (PEM), checked as the fleet's other signing keys are: only its holder reads it."""
    file = Path(path)
    if not file.is_file():
        raise BundleKeyError(f"no bundle signing key at {path!r} (MOE_OPA_BUNDLE_SIGNING_KEY)")
    if file.stat().st_mode & stat.S_IRWXO:
        raise BundleKeyError(f"{file} is accessible to every user: chmod 600 it (only the control plane may hold it)")
    pem = file.read_bytes()
    try:
        key = load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise BundleKeyError(f"{file}: not a PEM private key ({exc})") from None
    if not isinstance(key, RSAPrivateKey):
        raise BundleKeyError(f"{file}: not an RSA key (OPA verifies the bundle with RS256)")
    return pem


@dataclass(frozen=True)
class Built:
    revision: str  # the manifest's revision: the version of the decision modules (version_of)
    body: bytes  # the signed .tar.gz


def bundle_modules(settings: PolicySettings, approved: dict[str, Any] | None) -> list[tuple[str, bytes]]:
    """What the bundle holds: the policy files, the system authorization, and the approved egress module in place
    of the reviewed one unless the reviewed file changed since it was approved (the reviewed file wins)."""
    directory, system = settings.policy_dir(), settings.system_dir()
    files = [(p.name, p.read_bytes()) for p in rego_files(directory)] if directory and directory.is_dir() else []
    if system is not None and system.is_dir():
        files += [(p.name, p.read_bytes()) for p in rego_files(system)]
    if approved is None:
        return files
    reviewed = reviewed_file(directory)
    if reviewed is not None and approved["reviewed_file"] and reviewed.digest != approved["reviewed_file"]:
        return files
    kept = [(name, text) for name, text in files if not EGRESS_PACKAGE.search(text.decode())]
    name = reviewed.path.name if reviewed is not None else "egress.rego"
    return [*kept, (name, str(approved["module"]).encode())]


def revision_of(modules: list[tuple[str, bytes]]) -> str:
    return version_of((n, t) for n, t in modules if not SYSTEM_PACKAGE.search(t.decode())).digest


class PolicyBundles:
    """The bundle in force, built on request from the files and `approved()` (the change in force, or None)."""

    def __init__(self, settings: PolicySettings, approved: Callable[[], Awaitable[dict[str, Any] | None]]) -> None:
        self.settings, self.approved = settings, approved
        self.key = signing_key(settings.opa_bundle_signing_key)
        self._built: tuple[tuple[tuple[str, bytes], ...], Built] | None = None
        self._changed = asyncio.Event()  # set (and replaced) when this replica commits a change: held polls answer
        self.router = APIRouter()
        self.router.add_api_route(f"/v1/opa/bundles/{NAME}.tar.gz", self.serve, methods=["GET"])

    async def current(self) -> Built:
        """The bundle of what is in force now (signed again only when its modules changed)."""
        modules = tuple(await asyncio.to_thread(bundle_modules, self.settings, await self.approved()))
        if self._built is not None and self._built[0] == modules:
            return self._built[1]
        body = await asyncio.to_thread(signed_bundle, modules, self.key)
        built = Built(revision_of(list(modules)), body)
        self._built = (modules, built)
        return built

    def changed(self) -> None:
        """What is in force changed here (an approval committed): the polls held now answer with the new bundle."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def serve(self, request: Request) -> Response:
        token = self.settings.opa_token.get_secret_value()
        given = request.headers.get("authorization", "")
        if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise OpenAIError(401, "OPA's bundle is served to OPA's token only (MOE_OPA_TOKEN)",
                              "authentication_error", code="invalid_api_key")
        wait = WAIT.search(request.headers.get("prefer", ""))
        held = request.headers.get("if-none-match")
        built = await self.current()
        if wait is not None:
            deadline = time.monotonic() + min(float(wait.group(1)), LONG_POLL_MAX_S)
            while held in (f'"{built.revision}"', built.revision) and (left := deadline - time.monotonic()) > 0:
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), min(left, LONG_POLL_CHECK_S))
                except TimeoutError:
                    pass
                built = await self.current()
        etag = f'"{built.revision}"'
        media = LONG_POLL_TYPE if wait is not None else "application/gzip"
        if held in (etag, built.revision):
            return Response(status_code=304, headers={"ETag": etag, "Content-Type": media})
        return Response(built.body, media_type=media, headers={"ETag": etag})

    async def loaded(self, opa: PolicyClient, revision: str) -> None:
        """Returns once OPA holds `revision` (it names it in its answers); PolicyUnavailable after
        MOE_OPA_BUNDLE_WAIT_S, naming the revision it holds."""
        deadline, held = time.monotonic() + self.settings.opa_bundle_wait_s, None
        while True:
            try:
                held = await opa.bundle_revision()
            except PolicyUnavailable:
                held = None
            if held == revision:
                return
            if time.monotonic() > deadline:
                raise PolicyUnavailable(f"OPA did not load the policy bundle {revision} within "
                                        f"{self.settings.opa_bundle_wait_s:.0f} s (MOE_OPA_BUNDLE_WAIT_S); it holds "
                                        f"{held or 'no bundle'}: is it polling {NAME} from the control plane?")
            await asyncio.sleep(POLL_S)


def from_settings(settings: PolicySettings,
                  approved: Callable[[], Awaitable[dict[str, Any] | None]]) -> PolicyBundles | None:
    """The bundle server when a signing key is set (MOE_OPA_BUNDLE_SIGNING_KEY), else None (OPA loads the files)."""
    return PolicyBundles(settings, approved) if settings.opa_bundle_signing_key else None
