package moe.policy_changes_test

import data.moe.policy_changes

person(id, role) := {"id": id, "kind": "person", "key_id": id, "role": role, "tenants": ["ops"]}

req(principal, action) := {
	"action": action, "principal": principal, "tenant": "ops",
	"resource": {"proposer": "p-alice", "status": "pending"},
}

codes(inp) := {r.code | some r in denied} if denied := policy_changes.deny with input as inp

test_only_the_operator_changes_the_egress_policy if {
	policy_changes.decision.allow with input as req(person("p-alice", "operator"), "egress_policy.propose")
	codes(req(person("p-admin", "admin"), "egress_policy.propose")) == {"insufficient_role"}
	codes(req(person("p-user", "user"), "egress_policy.reject")) == {"insufficient_role"}
}

test_the_proposer_never_approves if {
	codes(req(person("p-alice", "operator"), "egress_policy.approve")) == {"self_approval"}
	policy_changes.decision.allow with input as req(person("p-bob", "operator"), "egress_policy.approve")
}

test_a_service_account_never_approves if {
	sa := {"id": "sa-x", "kind": "service", "key_id": "sa-x", "role": "operator", "tenants": ["ops"]}
	codes(req(sa, "egress_policy.approve")) == {"approver_not_a_person"}
	codes(req({"id": "p-y", "key_id": "k", "role": "operator", "tenants": ["ops"]}, "egress_policy.approve")) == {"approver_not_a_person"}
}

test_no_decision_for_other_actions if {
	not policy_changes.decision with input as req(person("p-bob", "operator"), "guardrails.approve")
}
