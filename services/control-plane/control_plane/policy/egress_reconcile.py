"""The approved egress policy kept in force at Open Policy Agent (issue 50). A pushed module lives in OPA's memory: a
restart, or with --watch a change of any policy file, loads the files again, and anyone holding OPA's token can
replace a module. At start and every MOE_EGRESS_RECONCILE_S the control plane reads OPA's `moe.egress` module
(`GET /v1/policies`) and compares it with the approved change in force (egress_policy_changes.in_force):

- the same: nothing;
- the reviewed file (policy/opa/egress.rego in MOE_OPA_POLICY_DIR) is no longer the one the change was simulated
  and approved against: **the reviewed file wins**. The change is marked superseded (audit event
  `egress_policy.superseded`) and the approved module is not put back: OPA keeps what it loaded from the files (if
  it still holds the approved module, it is given the reviewed file's text, as a reload would give it);
- otherwise the approved module is put back (`egress_policy.reapplied`) with the cause: `not_pushed` (the approval's
  push after its commit did not happen), `opa_restarted` (OPA holds the reviewed file under a new instance id),
  `file_reloaded` (the same OPA loaded the files again), `unapproved_put` (a module that is neither: someone with the
  token put it; its digest and text are in the event).

Each outcome counts in moe_egress_policy_reconciled_total{action,cause}. With no approved change in force,
an egress module in OPA that is not the reviewed file is shown (moe_egress_policy_unreviewed), not reverted.
One replica at a time (the fleet's apply lock, also held by an approval's push); a replica that finds the lock taken
skips its turn, and a round that takes longer than MOE_EGRESS_APPLY_WAIT_S is given up (the lock released).

Under the signed bundle the control plane serves (control_plane.policy.bundle_server, MOE_OPA_BUNDLE_SIGNING_KEY)
nothing is put: the bundle built on each of OPA's requests holds the change in force (or the newer reviewed file),
a restarted OPA loads it again, and OPA refuses any module put beside it (the bundle owns every path), so
`opa_restarted`, `file_reloaded` and `unapproved_put` cannot happen. A round then marks a change superseded as above,
records an approval whose wait for OPA ended before OPA loaded it (`loaded`, cause `not_pushed`: the audit event
`egress_policy.applied`), and counts `waiting` (cause `bundle_not_loaded`) while OPA holds another egress module."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from control_plane.admin.key_audit import change_event
from control_plane.policy.bundle_server import PolicyBundles
from control_plane.policy.egress_changes import IN_FORCE, PUSHED, SUPERSEDE, EgressChanges
from control_plane.policy.egress_reviewed import Reviewed, reviewed_file
from control_plane.policy.egress_simulation import EvalError, candidate_digest, egress_module
from control_plane.policy.settings import PolicySettings
from moe_core.contracts import AuditEvent
from moe_core.policy import PolicyClient, PolicyUnavailable
from moe_core.runtime.observability.metrics import EGRESS_POLICY_RECONCILED, EGRESS_POLICY_UNREVIEWED
from moe_core.runtime.periodic import Periodic

log = logging.getLogger(__name__)
ACTOR = "service:control-plane"
FOUND_TEXT_MAX = 8000  # of a module found in OPA's place, kept in the audit event


def cause_of(found: str, reviewed: Reviewed | None, change: dict[str, Any], instance: str) -> str:
    """Why OPA's egress module is not the approved one."""
    if change["applied_version"] is None:
        return "not_pushed"
    if reviewed is None:  # no reviewed file to compare with (MOE_OPA_POLICY_DIR empty): a new OPA loaded its files
        return "opa_restarted" if instance != change["pushed_to"] else "unapproved_put"
    if found == reviewed.text:
        return "opa_restarted" if instance != change["pushed_to"] else "file_reloaded"
    return "unapproved_put"


class EgressReconciler:
    def __init__(self, settings: PolicySettings, pool: Callable[[], asyncpg.Pool], opa: PolicyClient,
                 publish: Callable[[AuditEvent], Awaitable[None]], namespace: str = "",
                 bundles: PolicyBundles | None = None) -> None:
        """namespace: the fleet's (MOE_TOPIC_NAMESPACE): the changes approved in it are the ones kept in force.
        bundles: OPA's signed bundle, when the control plane serves one (then nothing is put)."""
        self.settings, self.pool, self.opa, self.publish, self.namespace = settings, pool, opa, publish, namespace
        self.bundles = bundles
        self.loop = Periodic(self.once, lambda: settings.egress_reconcile_s, first=True,
                             what="the egress policy's reconcile")
        self.start, self.close = self.loop.start, self.loop.close

    async def once(self) -> str | None:
        """One comparison: 'reapplied', 'superseded', 'failed', under a bundle 'loaded' or 'waiting', or None
        (nothing to do, or another replica's turn)."""
        try:
            async with asyncio.timeout(self.settings.egress_apply_wait_s):  # the apply lock is never held longer
                return await self._round()
        except TimeoutError:
            EGRESS_POLICY_RECONCILED.labels("failed", "timeout").inc()
            log.warning("the egress policy's reconcile round took more than %.0f s (MOE_EGRESS_APPLY_WAIT_S): given "
                        "up, the apply lock released", self.settings.egress_apply_wait_s)
            return "failed"
        except (PolicyUnavailable, EvalError, asyncpg.PostgresError, OSError) as exc:
            cause = "policy_unavailable" if isinstance(exc, PolicyUnavailable) else type(exc).__name__
            EGRESS_POLICY_RECONCILED.labels("failed", cause).inc()
            log.warning("the approved egress policy could not be checked at OPA: %s", exc)
            return "failed"

    async def _round(self) -> str | None:
        changes = EgressChanges(self.pool(), self.namespace)
        async with changes.applying(None) as conn:
            if conn is None:
                return None
            row = await conn.fetchrow(IN_FORCE, self.namespace)
            if row is None:
                await self._unreviewed()
                return None
            EGRESS_POLICY_UNREVIEWED.set(0)  # a change in force: what differs from it is put back below
            change = dict(row)
            reviewed = await asyncio.to_thread(reviewed_file, self.settings.policy_dir())
            modules = await self.opa.modules()
            module_id = egress_module(modules)
            found = modules[module_id]
            if reviewed is not None and change["reviewed_file"] and reviewed.digest != change["reviewed_file"]:
                await conn.execute(SUPERSEDE, change["id"], reviewed.digest)
                await self._superseded(change, reviewed)
                if found != reviewed.text and self.bundles is None:  # OPA holds the approved module: the file
                    await self.opa.put_module(module_id, reviewed.text)
                return "superseded"
            if self.bundles is not None:
                return await self._bundled(conn, change, found)
            if found == change["module"]:
                return None
            cause = cause_of(found, reviewed, change, await self.opa.instance())
            version = (await self.opa.put_module(module_id, change["module"])).digest
            await conn.execute(PUSHED, change["id"], version, await self.opa.instance())
        await self._reapplied(change, cause, module_id, found, version)
        return "reapplied"

    async def _bundled(self, conn: asyncpg.Connection, change: dict[str, Any], found: str) -> str | None:
        """Under the signed bundle: OPA holds the approved module (recorded if the approval's wait ended first), or
        it has not loaded the bundle that holds it yet (nothing to put: counted and logged)."""
        if found != change["module"]:
            EGRESS_POLICY_RECONCILED.labels("waiting", "bundle_not_loaded").inc()
            log.warning("OPA does not hold the approved egress change %s yet: is it polling the control plane's "
                        "policy bundle?", change["id"])
            return "waiting"
        if change["applied_version"] is not None:
            return None
        version = (await self.opa.version()).digest
        await conn.execute(PUSHED, change["id"], version, await self.opa.instance())
        EGRESS_POLICY_RECONCILED.labels("loaded", "not_pushed").inc()
        await self._audit(change, "egress_policy.applied", {"cause": "bundle_loaded", "policy_version": version,
                                                             "reviewed_file": change["reviewed_file"]})
        return "loaded"

    async def _unreviewed(self) -> None:
        """No approved change in force: OPA's egress module should be the reviewed file. One that is not (put with
        the token, or a file OPA refused) is shown, not reverted: in Kubernetes the control plane and OPA see a new
        ConfigMap at different moments, and reverting would undo a fresh review. MoEEgressPolicyUnreviewed fires
        when it lasts longer than that."""
        reviewed = await asyncio.to_thread(reviewed_file, self.settings.policy_dir())
        if reviewed is None:  # nothing reviewed to compare with here
            EGRESS_POLICY_UNREVIEWED.set(0)
            return
        modules = await self.opa.modules()
        unreviewed = modules[egress_module(modules)] != reviewed.text
        if unreviewed:
            log.warning("OPA's egress module is not the reviewed %s and no approved change is in force",
                        reviewed.path)
        EGRESS_POLICY_UNREVIEWED.set(1 if unreviewed else 0)

    async def _superseded(self, change: dict[str, Any], reviewed: Reviewed) -> None:
        EGRESS_POLICY_RECONCILED.labels("superseded", "reviewed_file_changed").inc()
        log.warning("approved egress policy change %s superseded by the reviewed file %s (%s): not put back",
                    change["id"], reviewed.path, reviewed.digest)
        await self._audit(change, "egress_policy.superseded", {
            "cause": "reviewed_file_changed", "reviewed_file_approved": change["reviewed_file"],
            "reviewed_file_now": reviewed.digest, "file": reviewed.path.name,
            "approved": candidate_digest(change["module"])})

    async def _reapplied(self, change: dict[str, Any], cause: str, module_id: str, found: str, version: str) -> None:
        EGRESS_POLICY_RECONCILED.labels("reapplied", cause).inc()
        log.warning("OPA's egress module was not the approved change %s (%s): put back", change["id"], cause)
        await self._audit(change, "egress_policy.reapplied", {
            "cause": cause, "module_id": module_id, "found": candidate_digest(found),
            "found_text": found[:FOUND_TEXT_MAX], "approved": candidate_digest(change["module"]),
            "policy_version": version, "reviewed_file": change["reviewed_file"]})

    async def _audit(self, change: dict[str, Any], action: str, details: dict[str, Any]) -> None:
        for tenant in change["audit_tenants"] or []:  # the chains its approval's events went to
            event = change_event(ACTOR, action, f"egress-policy-change:{change['id']}", tenant,
                                 {"change_id": change["id"], **details})
            try:
                await self.publish(event)
            except Exception:  # put back (or superseded) already; the record must not be lost silently
                log.exception("audit event %s %s not published", action, change["id"])
