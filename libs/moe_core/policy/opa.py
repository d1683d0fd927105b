"""An Open Policy Agent client: a decision is `POST /v1/data/<path>` with an input document (OPA's Data API);
the version of the policies in force is a digest of the modules OPA serves (`GET /v1/policies`), read before and
after the decision (a reload in between: asked again), so it names exactly what decided, whichever files are on
disk. The read before is the client's latest one that ended before the decision was asked (the previous decision's
read after, or a read of its own for the first), and decisions whose answers came in before a read began share that
read as their read after: one read per decision at most instead of two (each is OPA serialising every module's text
and syntax tree, ~200 KB: most of OPA's CPU per decision, issue 52). A client has at most one read in flight: a
decision answered while one is in flight waits for the next, which begins when that one ends and serves every
decision answered in between (under load, overlapping reads slowed OPA until reads took seconds and decisions
timed out: 47 of 189 requests refused in a sustained bench cell). OPA unreachable, slow, or answering without a
decision is PolicyUnavailable: the caller fails closed (a 503 in its API's format), never allows by default.

Under a signed bundle (moe_core.policy.bundle: OPA run with `--bundle --verification-key`) no read is made around a
decision: it is asked with `?provenance=true`, and OPA names in the answer the revision of the bundle that decided
(read in the decision's own storage transaction, with the compiler of that bundle). The revision is trusted when
the bundle is OPA's only one and owns every path (roots [""]: OPA refuses `PUT /v1/policies` and data writes, so
no module sits beside it that the revision does not name), and when, read once per revision, the modules in force
digest to it (it is then the version the reads would give, module names included). Any other answer (no bundle, a
bundle that leaves paths free, a revision that is not its modules' digest) is decided between reads as above."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from moe_core.runtime.run_versions import policy_used

if TYPE_CHECKING:
    from moe_core.policy.settings import PolicyEngineSettings

ATTEMPTS = 3  # a decision asked again while the policies reload under it
KEPT_REVISIONS = 64  # bundle revisions a client keeps (trusted, and not)
MODULE_START = b'{"id":"'  # how OPA's JSON writes each module of GET /v1/policies (id, raw, ast)
# OPA's own API authorization (policy/opa-system): it decides who may call OPA, never a write, so it is not part
# of the version of the policies in force
SYSTEM_PACKAGE = re.compile(r"^package\s+system(\.|\s|$)", re.MULTILINE)


class PolicyUnavailable(RuntimeError):
    """No decision could be had from OPA (down, slow, an error, or the rule is undefined)."""


@dataclass(frozen=True)
class PolicyVersion:
    digest: str  # "sha256:" over the module names and texts, in name order
    modules: tuple[str, ...]  # the file names of the modules in force


@dataclass(frozen=True)
class Decision:
    path: str  # the rule asked, e.g. moe/knowledge/decision
    input: dict[str, Any]
    result: dict[str, Any]
    version: PolicyVersion
    denials: list[dict[str, Any]] = field(default_factory=list)  # {code, status, reason}, most severe first

    @property
    def allowed(self) -> bool:
        return bool(self.result.get("allow")) and not self.denials

    def summary(self) -> dict[str, Any]:
        """What an audit record keeps of it: the rule, the version, the input and the result."""
        return {"policy": self.path, "policy_version": self.version.digest, "input": self.input,
                "result": self.result}


def version_of(modules: Iterable[tuple[str, bytes]]) -> PolicyVersion:
    """The digest of modules given as (file name, text); the same for OPA's modules and the files on disk."""
    items = sorted((PurePosixPath(name).name, text) for name, text in modules)
    h = hashlib.sha256()
    for name, text in items:
        h.update(name.encode() + b"\0" + hashlib.sha256(text).digest())
    return PolicyVersion("sha256:" + h.hexdigest(), tuple(name for name, _ in items))


class PolicyClient:
    """OPA's REST API; with a token, every call carries it (`Authorization: Bearer`: an OPA started with
    `--authentication=token --authorization=basic` and policy/opa-system/authz.rego admits only its holders)."""

    def __init__(self, url: str, timeout_s: float = 2.0, client: httpx.AsyncClient | None = None,
                 token: str = "") -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._client = client or httpx.AsyncClient(timeout=timeout_s, headers=headers)
        # what every decision's input carries beside the caller's (the protected domains' rules,
        # `domain_rules`: moe_core.policy.domains.Keywords.rules); the caller's keys win
        self.context: dict[str, Any] = {}
        self._seen: tuple[tuple[bytes, tuple[bytes, ...]], PolicyVersion] | None = None  # the last list, its version
        self._last: PolicyVersion | None = None  # the version the latest read that ended found
        self._reading: tuple[float, asyncio.Future[PolicyVersion]] | None = None  # the latest read, since when
        self._next: asyncio.Future[PolicyVersion] | None = None  # the read that begins when the one in flight ends
        # the latest answer named a bundle revision this client trusts, so the next one is asked without a read
        # before it (at first too: an OPA without a bundle costs the first decision one more answer)
        self._bundled = True
        self._revisions: dict[str, PolicyVersion] = {}  # a signed bundle's revision -> the version it was read to be
        self._untrusted: set[str] = set()  # revisions of bundles that do not own every path: the reads decide
        self._checking: dict[str, asyncio.Future[PolicyVersion | None]] = {}  # revisions being read, by revision

    @classmethod
    def from_settings(cls, settings: PolicyEngineSettings) -> PolicyClient:
        """From PolicyEngineSettings: its url, timeout and token (MOE_OPA_URL, MOE_OPA_TIMEOUT_S, MOE_OPA_TOKEN)."""
        return cls(settings.opa_url, settings.opa_timeout_s, token=settings.opa_token.get_secret_value())

    async def close(self) -> None:
        await self._client.aclose()

    async def _content(self, method: str, path: str, **kwargs: Any) -> bytes:
        try:
            resp = await self._client.request(method, f"{self.url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise PolicyUnavailable(f"the policy engine (OPA at {self.url}) is unreachable: "
                                    f"{type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise PolicyUnavailable(f"the policy engine answered {resp.status_code} to {method} {path}: "
                                    f"{resp.text[:300]}")
        return resp.content

    async def _get(self, method: str, path: str, **kwargs: Any) -> Any:
        return _json(await self._content(method, path, **kwargs), path)

    async def version(self) -> PolicyVersion:
        """The version of the policies OPA has in force now: OPA's list is read each time (it has no cheaper source
        an insider could not make lie), but digested again only when its modules are not those of the previous
        answer (parsing its ~200 KB of texts and syntax trees cost 2-12 ms of CPU, before and after each decision)."""
        raw = await self._content("GET", "/v1/policies")
        key = _listed(raw)
        if self._seen is not None and self._seen[0] == key:
            self._last = self._seen[1]
            return self._seen[1]
        body = _json(raw, "/v1/policies")
        listed = body.get("result") or []
        modules = [(str(m.get("id", "")), str(m.get("raw", "")).encode()) for m in listed
                   if not SYSTEM_PACKAGE.search(str(m.get("raw", "")))]
        if not modules:
            raise PolicyUnavailable("the policy engine has no policies loaded")
        version = version_of(modules)
        # kept only when each listed module begins one part (OPA's syntax trees have no "id" key): then the same
        # parts are the same modules, whatever order OPA lists them in
        self._seen = (key, version) if len(key[1]) == len(listed) else None
        self._last = version
        return version

    async def _version_since(self, since: float) -> PolicyVersion:
        """The version read by a read that began at `since` or later: the latest read if it did; else, while a read
        is in flight, the next one (it begins when that one ends; every caller until then shares it); else a new
        one. So a client never has two reads in flight."""
        reading = self._reading
        if reading is not None and reading[0] >= since and not _failed(reading[1]):
            return await asyncio.shield(reading[1])
        if self._next is None and reading is not None and not reading[1].done():
            self._next = asyncio.ensure_future(self._read_after(reading[1]))
        if self._next is not None:  # it has not begun yet: it will begin after `since`
            return await asyncio.shield(self._next)
        return await asyncio.shield(self._read())

    def _read(self) -> asyncio.Future[PolicyVersion]:
        future = asyncio.ensure_future(self.version())
        self._reading = (time.monotonic(), future)
        return future

    async def _read_after(self, current: asyncio.Future[PolicyVersion]) -> PolicyVersion:
        await asyncio.wait([current])  # its outcome is its own callers'
        self._next = None
        return await self._read()

    async def decide(self, path: str, input_: dict[str, Any]) -> Decision:
        """OPA's decision of `path` (a rule whose value is an object with `allow` and `deny`) for `input_`, with
        the version it was made under (the same before and after it)."""
        input_ = {**self.context, **input_}
        body, version = await self._decided(path, input_)
        return _decision(path, input_, body.get("result"), version)

    async def decide_many(self, path: str, batch_path: str, inputs: list[dict[str, Any]]) -> list[Decision]:
        """decide() for many inputs in one request: `batch_path` is a rule of the same package that decides each
        item of `input.batch` as `path` would alone (moe.memory.batch), keyed by its position. Each Decision is
        the one decide() would give (the same path, input, result and version)."""
        if not inputs:
            return []
        inputs = [{**self.context, **i} for i in inputs]
        body, version = await self._decided(batch_path, {"batch": inputs})
        results = body.get("result")
        results = results if isinstance(results, dict) else {}
        return [_decision(path, item, results.get(str(n)), version) for n, item in enumerate(inputs)]

    async def _decided(self, path: str, input_: dict[str, Any]) -> tuple[dict[str, Any], PolicyVersion]:
        """OPA's answer for `input_` at `path` and the version of the policies it was decided under: the revision
        of the signed bundle OPA names in the answer (`?provenance=true`, read in the decision's own transaction),
        else the version in force before and after it."""
        for _ in range(ATTEMPTS):
            before = None if self._bundled else \
                self._last if self._last is not None else await self._version_since(float("-inf"))
            body = await self._get("POST", f"/v1/data/{path}?provenance=true", json={"input": input_})
            revision = _revision(body)
            self._bundled = revision is not None and revision not in self._untrusted
            if revision is not None and self._bundled:
                version = self._revisions.get(revision) or await self._checked(revision)
                if version is not None:
                    return body, version
            elif before is not None:
                version = await self._version_since(time.monotonic())
                if version == before:
                    return body, version
        raise PolicyUnavailable(f"the policies changed during each of {ATTEMPTS} decisions: try again")

    async def _checked(self, revision: str) -> PolicyVersion | None:
        """_revision_version, one at a time per revision: decisions answered meanwhile under it share it."""
        check = self._checking.get(revision)
        if check is None:
            check = self._checking[revision] = asyncio.ensure_future(self._revision_version(revision))
            check.add_done_callback(lambda _: self._checking.pop(revision, None))
        return await asyncio.shield(check)

    async def _revision_version(self, revision: str) -> PolicyVersion | None:
        """The version a bundle's revision names, read once: kept when the bundle owns every path (no module can be
        put beside it) and the modules in force then digest to it. Else None, and the revision is left to the reads
        (another bundle came in since the answer, or its revision does not name its modules): asked again."""
        bundles = (await self._get("GET", "/v1/data/system/bundles")).get("result") or {}
        manifests = [b.get("manifest") or {} for b in bundles.values() if isinstance(b, dict)]
        version = await self.version() if len(manifests) == 1 and manifests[0].get("roots") == [""] else None
        if version is not None and version.digest == revision:
            _keep(self._revisions, revision, version)
            return version
        _keep(self._untrusted, revision)
        return None

    async def bundle_revision(self) -> str | None:
        """The revision of the one bundle OPA has activated (`GET /v1/data/system/bundles`: the manifests in the
        store a decision's provenance is read from), None without exactly one."""
        bundles = (await self._get("GET", "/v1/data/system/bundles")).get("result") or {}
        revisions = [str((b.get("manifest") or {}).get("revision", "")) for b in bundles.values()
                     if isinstance(b, dict)]
        return revisions[0] if len(revisions) == 1 and revisions[0] else None

    async def modules(self) -> dict[str, str]:
        """The decision modules OPA has in force: id -> Rego text (OPA's own API authorization left out)."""
        body = await self._get("GET", "/v1/policies")
        return {str(m.get("id", "")): str(m.get("raw", "")) for m in body.get("result") or []
                if not SYSTEM_PACKAGE.search(str(m.get("raw", "")))}

    async def instance(self) -> str:
        """The running OPA's instance id (`GET /v1/config`, labels.id: a new one at each start unless configured)."""
        body = await self._get("GET", "/v1/config")
        return str(((body.get("result") or {}).get("labels") or {}).get("id", ""))

    async def put_module(self, module_id: str, text: str) -> PolicyVersion:
        """Replace the module `module_id` in the running OPA (`PUT /v1/policies/<id>`, with the client's token):
        OPA compiles it with the others or refuses it (PolicyUnavailable naming why). The version then in force."""
        await self._get("PUT", f"/v1/policies/{quote(module_id, safe='')}", content=text.encode(),
                        headers={"Content-Type": "text/plain"})
        return await self.version()


def _revision(body: dict[str, Any]) -> str | None:
    """The revision of the one bundle OPA's answer was decided under (`?provenance=true`), None without one."""
    bundles = (body.get("provenance") or {}).get("bundles") or {}
    revisions = [str(b.get("revision", "")) for b in bundles.values() if isinstance(b, dict)]
    return revisions[0] if len(revisions) == 1 and revisions[0] else None


def _keep(kept: dict[str, PolicyVersion] | set[str], revision: str, version: PolicyVersion | None = None) -> None:
    if len(kept) >= KEPT_REVISIONS:
        kept.clear()
    if isinstance(kept, dict) and version is not None:
        kept[revision] = version
    elif isinstance(kept, set):
        kept.add(revision)


def _failed(read: asyncio.Future[PolicyVersion]) -> bool:
    return read.done() and (read.cancelled() or read.exception() is not None)


def _listed(raw: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    """OPA's answer to GET /v1/policies as its head and its modules' parts, in name-independent order: OPA lists
    the modules in any order (a Go map's), so two answers with the same modules differ in bytes, not in parts. A
    part runs from one `{"id":"` to the next (outside a JSON string a quote is never escaped, so that text starts
    a module or an "id" key of its syntax tree), its separators and closing brackets cut off."""
    head, *parts = raw.split(MODULE_START)
    return head, tuple(sorted(part.rstrip(b",]} \n") for part in parts))


def _json(raw: bytes, path: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PolicyUnavailable(f"the policy engine's answer to {path} is not JSON") from exc


def _decision(path: str, input_: dict[str, Any], result: Any, version: PolicyVersion) -> Decision:
    if not isinstance(result, dict) or "allow" not in result:
        raise PolicyUnavailable(f"the policy has no decision at {path} for this input (undefined)")
    denials = sorted((d for d in result.get("deny") or [] if isinstance(d, dict)),
                     key=lambda d: (-int(d.get("status", 403)), str(d.get("code", ""))))
    policy_used(path, version.digest)  # a stage run's messages name the policies it decided under
    return Decision(path, input_, result, version, denials)
