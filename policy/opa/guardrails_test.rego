package moe.guardrails_test

import data.moe.guardrails

person(id, role, tenants) := {"id": id, "kind": "person", "key_id": id, "role": role, "tenants": tenants}

service(id, tenants) := {"id": id, "kind": "service", "key_id": id, "role": "admin", "tenants": tenants}

req(principal, action, tenants) := {
	"action": action, "principal": principal, "tenant": tenants[0],
	"resource": {"tenants": tenants, "proposer": "p-alice", "status": "pending"},
}

codes(inp) := {r.code | some r in denied} if denied := guardrails.deny with input as inp

test_a_tenant_admin_proposes_changes_of_its_own_tenants_only if {
	guardrails.decision.allow with input as req(person("p-alice", "admin", ["t1"]), "guardrails.propose", ["t1"])
	codes(req(person("p-alice", "admin", ["t1"]), "guardrails.propose", ["t1", "t2"])) == {"tenant_forbidden"}
	guardrails.decision.allow with input as req(person("p-op", "operator", ["ops"]), "guardrails.propose", ["t2"])
}

test_the_proposer_never_approves if {
	codes(req(person("p-alice", "admin", ["t1"]), "guardrails.approve", ["t1"])) == {"self_approval"}
	guardrails.decision.allow with input as req(person("p-bob", "admin", ["t1"]), "guardrails.approve", ["t1"])
}

test_a_service_account_never_approves if {
	codes(req(service("sa-x", ["t1"]), "guardrails.approve", ["t1"])) == {"approver_not_a_person"}
	codes(req({"id": "p-y", "key_id": "k", "role": "admin", "tenants": ["t1"]}, "guardrails.approve", ["t1"])) == {"approver_not_a_person"}
}

test_the_approver_administers_every_changed_tenant if {
	codes(req(person("p-bob", "admin", ["t1"]), "guardrails.approve", ["t1", "t2"])) == {"tenant_forbidden"}
}

test_the_proposer_may_withdraw_and_a_user_may_do_nothing if {
	guardrails.decision.allow with input as req(person("p-alice", "admin", ["t1"]), "guardrails.reject", ["t1"])
	codes(req(person("p-u", "user", ["t1"]), "guardrails.reject", ["t1"])) == {"insufficient_role"}
}
