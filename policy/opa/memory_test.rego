package moe.memory_test

import data.moe.memory

ingest(role, tenant, chars, domains) := {
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
