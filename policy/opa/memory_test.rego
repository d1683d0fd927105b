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
