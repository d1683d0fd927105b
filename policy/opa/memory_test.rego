package moe.memory_test

import data.moe.domains_test
import data.moe.memory

ingest(role, tenant, chars, domains) := {
	"domain_rules": domains_test.shipped,
	"action": "memory.ingest", "tenant": tenant,
	"principal": {"id": "key:k", "key_id": "k", "role": role, "tenants": ["t1"]},
	"resource": {"chars": chars, "domains": domains},
}

test_an_admin_ingests_into_its_tenant if {
	d := memory.decision with input as ingest("admin", "t1", 100, ["technical"])
	d.allow
	not d.quarantine
}

test_a_protected_domain_goes_to_review if {
	d := memory.decision with input as ingest("admin", "t1", 100, ["medical", "math"])
	d.allow
	d.quarantine
	d.protected_domains == ["medical"]
}

test_a_user_key_ingests_into_its_own_tenant_and_a_protected_domain_goes_to_review if {
	d := memory.decision with input as ingest("user", "t1", 100, ["technical"])
	d.allow
	not d.quarantine
	held := memory.decision with input as ingest("user", "t1", 100, ["legal"])
	held.allow
	held.quarantine
}

test_ingest_is_refused_to_other_tenants_and_huge_texts if {
	{r.code | some r in memory.deny} == {"tenant_forbidden"} with input as ingest("user", "t2", 1, [])
	{r.code | some r in memory.deny} == {"tenant_forbidden"} with input as ingest("admin", "t2", 1, [])
	{r.code | some r in memory.deny} == {"too_large"} with input as ingest("admin", "t1", 20001, [])
}

test_a_learned_triple_in_a_protected_domain_is_quarantined if {
	t := {
		"action": "graph.learned_triple", "principal": {
			"id": "service:graph-ingest", "role": "service",
			"tenants": [],
		},
		"tenant": "t1", "resource": {"domains": ["legal"]},
	}
	d := memory.decision with input as t
	d.allow
	d.quarantine
}

triple(domains) := {
	"domain_rules": domains_test.shipped, "action": "graph.learned_triple", "tenant": "t1",
	"principal": {"id": "service:graph-ingest", "role": "service", "tenants": []},
	"resource": {"domains": domains},
}

test_a_batch_decides_each_input_as_if_asked_alone if {
	inputs := [triple(["technical"]), triple(["medical"]), ingest("user", "t2", 100, [])]
	b := memory.batch with input as {"batch": inputs}
	count(b) == 3
	every i, item in inputs {
		b[sprintf("%d", [i])] == memory.decision with input as item
	}
	not b["0"].quarantine
	b["1"].quarantine
	not b["2"].allow
}

delete(role, id, tenants, uploaded_by) := {
	"action": "memory.document_delete", "tenant": "t1",
	"principal": {"id": id, "key_id": "k", "role": role, "tenants": tenants},
	"resource": {"uploaded_by": uploaded_by, "domain": "medical"},
}

test_the_uploader_and_the_tenants_admins_delete_a_document if {
	memory.decision.allow with input as delete("user", "person-kim", ["t1"], "person-kim")
	memory.decision.allow with input as delete("admin", "person-ada", ["t1"], "person-kim")
	memory.decision.allow with input as delete("operator", "op", ["t1"], "person-kim")
	memory.decision.allow with input as delete("admin", "person-ada", ["t1"], null)
}

test_another_user_or_another_tenants_admin_does_not if {
	{r.code | some r in memory.deny} == {"not_document_owner"} with input as delete("user", "nurse", ["t1"], "person-kim")
	{r.code | some r in memory.deny} == {"not_document_owner"} with input as delete("user", "nurse", ["t1"], null)
	{r.code | some r in memory.deny} == {"not_document_owner"} with input as delete("admin", "adm2", ["t2"], "person-kim")
}

upload(role, tenant, label, domains) := {
	"domain_rules": domains_test.shipped,
	"action": "memory.document_upload", "tenant": tenant,
	"principal": {"id": "sa-k", "kind": "service", "key_id": "k", "role": role, "tenants": ["t1"]},
	"resource": {"domain": label, "domains": domains},
}

test_a_document_in_an_unprotected_domain_is_not_held if {
	d := memory.decision with input as upload("user", "t1", "general", ["technical"])
	d.allow
	not d.review
	d.approvals_required == 0
	d.protected_domains == []
}

test_a_document_whose_text_is_medical_is_held_whatever_its_label if {
	d := memory.decision with input as upload("user", "t1", "general", ["medical", "technical"])
	d.allow
	d.review
	d.approvals_required == 2
	d.protected_domains == ["medical"]
}

test_a_protected_label_adds_review_to_a_text_the_server_found_nothing_in if {
	d := memory.decision with input as upload("user", "t1", "legal", [])
	d.review
	d.approvals_required == 2
	d.protected_domains == ["legal"]
	both := memory.decision with input as upload("admin", "t1", "medical", ["legal"])
	both.protected_domains == ["legal", "medical"]
}

test_an_upload_into_another_tenant_is_refused if {
	{r.code | some r in memory.deny} == {"tenant_forbidden"} with input as upload("user", "t2", "general", [])
}

review(action, id, kind, role, tenants, uploaded_by, approvers, required) := {
	"action": action, "tenant": "t1",
	"principal": {"id": id, "kind": kind, "key_id": "k", "role": role, "tenants": tenants},
	"resource": {"uploaded_by": uploaded_by, "approvers": approvers, "approvals_required": required, "domains": ["medical"]},
}

approve(id, kind, role, approvers) := review("memory.document_approve", id, kind, role, ["t1"], "kim", approvers, 2)

test_a_tenant_admin_person_approves_a_held_document if {
	memory.decision.allow with input as approve("ada", "person", "admin", [])
	memory.decision.allow with input as approve("bob", "person", "admin", ["ada"])
	memory.decision.allow with input as review("memory.document_reject", "sa-x", "service", "admin", ["t1"], "kim", [], 2)
}

test_the_uploader_never_reviews_its_own_document if {
	{r.code | some r in memory.deny} == {"self_approval"} with input as approve("kim", "person", "admin", [])
	{r.code | some r in memory.deny} == {"self_approval"} with input as review("memory.document_reject", "kim", "person", "admin", ["t1"], "kim", [], 2)
	{r.code | some r in memory.deny} == {"self_approval"} with input as review("memory.document_approve", "ada", "person", "admin", ["t1"], null, [], 2)
}

test_a_service_account_never_approves if {
	{r.code | some r in memory.deny} == {"approver_not_a_person"} with input as approve("sa-bot", "service", "admin", [])
	{r.code | some r in memory.deny} == {"approver_not_a_person"} with input as approve("sa-bot", null, "admin", [])
	{r.code | some r in memory.deny} == {"approver_not_a_person"} with input as review("memory.document_approve", "sa-bot", "service", "admin", ["t1"], "kim", [], 1)
}

test_one_principal_counts_once if {
	{r.code | some r in memory.deny} == {"duplicate_approval"} with input as approve("ada", "person", "admin", ["ada"])
}

test_a_user_key_or_another_tenants_admin_does_not_review if {
	{r.code | some r in memory.deny} == {"insufficient_role"} with input as approve("nurse", "person", "user", [])
	{r.code | some r in memory.deny} == {"insufficient_role"} with input as review("memory.document_reject", "nurse", "person", "user", ["t1"], "kim", [], 2)
	{r.code | some r in memory.deny} == {"insufficient_role"} with input as review("memory.document_approve", "adm2", "person", "admin", ["t2"], "kim", [], 2)
}
