package moe.quarantine_test

import data.moe.domains_test
import data.moe.quarantine

approve(principal, role, resource) := {
	"domain_rules": domains_test.shipped,
	"action": "graph.quarantine_approve", "tenant": "t1",
	"principal": {"id": principal, "kind": "person", "key_id": "k", "role": role, "tenants": ["t1"]},
	"resource": resource,
}

as_service(inp) := json.patch(inp, [{"op": "replace", "path": "/principal/kind", "value": "service"}])

test_a_service_account_never_approves if {
	codes(as_service(approve("sa-1", "admin", {"domains": ["medical"], "approvers": [], "submitted_by": ""}))) == {"approver_not_a_person"}
	codes(as_service(approve("sa-1", "admin", {"domains": ["general"], "approvers": [], "submitted_by": ""}))) == {"approver_not_a_person"}
}

codes(inp) := {r.code | some r in denied} if denied := quarantine.deny with input as inp

test_a_protected_domain_needs_two_principals_a_dense_general_triple_one if {
	medical := quarantine.decision with input as approve("p1", "admin", {"domains": ["medical"], "approvers": [], "submitted_by": ""})
	medical.allow
	medical.approvals_required == 2
	general := quarantine.decision with input as approve("p1", "admin", {"domains": ["general"], "approvers": [], "submitted_by": ""})
	general.approvals_required == 1
	none := quarantine.decision with input as approve("p1", "admin", {"domains": [], "approvers": [], "submitted_by": ""})
	none.approvals_required == 1
	math := quarantine.decision with input as approve("p1", "admin", {"domains": ["math"], "approvers": [], "submitted_by": ""})
	math.approvals_required == 1
}

test_one_principal_counts_once_and_never_for_its_own_text if {
	codes(approve("p1", "admin", {"domains": ["legal"], "approvers": ["p1"], "submitted_by": ""})) == {"already_approved"}
	codes(approve("p1", "admin", {"domains": ["legal"], "approvers": [], "submitted_by": "p1"})) == {"own_submission"}
	quarantine.decision.allow with input as approve("p2", "admin", {"domains": ["legal"], "approvers": ["p1"], "submitted_by": "p3"})
}

test_a_user_key_approves_nothing if {
	codes(approve("p1", "user", {"domains": ["general"], "approvers": [], "submitted_by": ""})) == {"insufficient_role"}
}

# A gap-healer classification held for review is submitted by the principal whose question raised the gap
# (OntologyGap.asked_by): the asker is never one of its two approvers, first or second; other people are.
test_the_asker_of_a_held_gap_classification_may_not_approve_it if {
	codes(approve("asker", "admin", {"domains": ["medical"], "approvers": [], "submitted_by": "asker"})) == {"own_submission"}
	codes(approve("asker", "admin", {"domains": ["medical"], "approvers": ["p2"], "submitted_by": "asker"})) == {"own_submission"}
	quarantine.decision.allow with input as approve("p2", "admin", {"domains": ["medical"], "approvers": [], "submitted_by": "asker"})
	quarantine.decision.allow with input as approve("p3", "admin", {"domains": ["medical"], "approvers": ["p2"], "submitted_by": "asker"})
}
