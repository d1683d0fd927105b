"""The checks a rule file may name, by name."""

from __future__ import annotations

from codex_lineage.compliance import checks_classes as cls
from codex_lineage.compliance import checks_governance as gov
from codex_lineage.compliance import checks_operations as ops
from codex_lineage.compliance import checks_record as rec
from codex_lineage.compliance.outcome import Check

CHECKS: dict[str, Check] = {
    "topic_retention": rec.topic_retention,
    "audit_recording": rec.audit_recording,
    "checkpoints_anchored": rec.checkpoints_anchored,
    "writer_least_privilege": rec.writer_least_privilege,
    "import_approvals": gov.import_approvals,
    "import_policy": gov.import_policy,
    "policy_versions": gov.policy_versions,
    "key_expiry": gov.key_expiry,
    "key_changes_audited": gov.key_changes_audited,
    "document_on_file": gov.document_on_file,
    "alert_rules": ops.alert_rules,
    "backups": ops.backups,
    "data_health": ops.data_health,
    "data_class_flow": cls.data_class_flow,
}
NAMES = frozenset(CHECKS)
