package moe.knowledge_test

import data.moe.domains_test
import data.moe.knowledge

admin(id, tenants) := {"id": id, "kind": "person", "key_id": id, "role": "admin", "tenants": tenants}

service(id, tenants) := {"id": id, "kind": "service", "key_id": id, "role": "admin", "tenants": tenants}

imported(resolved, labels) := {
	"domain_rules": domains_test.shipped,
	"action": "knowledge.import", "principal": admin("key:a", ["t1"]), "tenant": "t1",
	"resource": {"domains": {"resolved": resolved, "unresolved_labels": labels}, "entities": 2, "relations": 1},
}

test_a_math_labelled_medical_fact_needs_two_approvals if {
	d := knowledge.decision with input as imported(["medical"], [])
	d.approvals_required == 2
	d.domains == ["medical"]
	d.allow
}

test_a_label_only_counts_where_nothing_was_resolved if {
	knowledge.decision.approvals_required == 2 with input as imported(["legal"], ["math"])
	knowledge.decision.approvals_required == 2 with input as imported([], ["medical"])
}

test_an_unresolved_item_needs_the_default_whatever_its_label if {
	knowledge.decision.approvals_required == 1 with input as imported([], ["math"])
	knowledge.decision.approvals_required == 1 with input as imported(["math"], ["math"])
}

test_math_needs_none_only_when_everything_resolves_to_math if {
	knowledge.decision.approvals_required == 0 with input as imported(["math"], [])
	knowledge.decision.approvals_required == 1 with input as imported(["math", "technical"], [])
}

test_unknown_domains_take_the_default if {
	knowledge.decision.approvals_required == 1 with input as imported(["technical"], [])
	knowledge.decision.approvals_required == 1 with input as imported([], [])
}

test_a_user_key_may_not_import if {
	inp := json.patch(imported(["math"], []), [{"op": "replace", "path": "/principal/role", "value": "user"}])
	d := knowledge.decision with input as inp
	not d.allow
	{r.code | some r in d.deny} == {"insufficient_role"}
}

test_another_tenant_is_forbidden if {
	inp := json.patch(imported(["math"], []), [{"op": "replace", "path": "/tenant", "value": "t2"}])
	{r.code | some r in knowledge.deny} == {"tenant_forbidden"} with input as inp
}

approval(who, importer, approvers) := {
	"action": "knowledge.approve", "principal": who, "tenant": "t1",
	"resource": {"importer": importer, "approvers": approvers, "status": "pending", "approvals_required": 2},
}

test_a_service_account_never_approves if {
	d := knowledge.decision with input as approval(service("sa-b", ["t1"]), "key:a", [])
	{r.code | some r in d.deny} == {"approver_not_a_person"}
	no_kind := json.remove(approval(admin("key:b", ["t1"]), "key:a", []), ["/principal/kind"])
	{r.code | some r in knowledge.deny} == {"approver_not_a_person"} with input as no_kind
	single := json.patch(approval(service("sa-b", ["t1"]), "key:a", []), [{"op": "replace", "path": "/resource/approvals_required", "value": 1}])
	{r.code | some r in knowledge.deny} == {"approver_not_a_person"} with input as single
}

test_the_importer_may_not_approve if {
	d := knowledge.decision with input as approval(admin("key:a", ["t1"]), "key:a", [])
	{r.code | some r in d.deny} == {"self_approval"}
}

test_an_approver_counts_once if {
	d := knowledge.decision with input as approval(admin("key:b", ["t1"]), "key:a", ["key:b"])
	{r.code | some r in d.deny} == {"duplicate_approval"}
}

test_another_admin_of_the_tenant_approves if {
	knowledge.decision.allow with input as approval(admin("key:b", ["t1"]), "key:a", ["key:c"])
}

test_an_admin_of_another_tenant_may_not_approve if {
	d := knowledge.decision with input as approval(admin("key:b", ["t2"]), "key:a", [])
	{r.code | some r in d.deny} == {"tenant_forbidden"}
}
