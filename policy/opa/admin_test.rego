package moe.admin_test

import data.moe.admin

key(role, tenants) := {"id": "key:k", "key_id": "k", "role": role, "tenants": tenants}

req(principal, action, resource) := {"action": action, "principal": principal, "resource": resource}

codes(inp) := {r.code | some r in denied} if denied := admin.deny with input as inp

test_a_tenant_admin_mints_keys_for_its_own_tenant if {
	admin.decision.allow with input as req(key("admin", ["t1"]), "key.create", {"tenants": ["t1"], "role": "user"})
	admin.decision.allow with input as req(key("admin", ["t1"]), "key.create", {"tenants": ["t1"], "role": "admin"})
}

test_a_persons_keys_are_made_and_rotated_by_that_person_only if {
	for_bob := {"tenants": ["t1"], "role": "admin", "principal": "p-bob", "principal_kind": "person"}
	codes(req(key("admin", ["t1"]), "key.create", for_bob)) == {"person_key_forbidden"}
	codes(req(key("operator", ["t1"]), "key.rotate", for_bob)) == {"person_key_forbidden"}
	bob := {"id": "p-bob", "key_id": "k2", "role": "admin", "tenants": ["t1"]}
	admin.decision.allow with input as req(bob, "key.create", for_bob)
	admin.decision.allow with input as req(bob, "key.rotate", for_bob)
	admin.decision.allow with input as req(key("admin", ["t1"]), "key.revoke", for_bob)
	service := {"tenants": ["t1"], "role": "admin", "principal": "sa-x", "principal_kind": "service"}
	admin.decision.allow with input as req(key("admin", ["t1"]), "key.create", service)
}

test_a_tenant_admin_may_not_mint_a_key_for_another_tenant if {
	codes(req(key("admin", ["t1"]), "key.create", {"tenants": ["t1", "t2"], "role": "user"})) == {"tenant_forbidden"}
}

test_only_the_operator_mints_operator_keys if {
	codes(req(key("admin", ["t1"]), "key.create", {"tenants": ["t1"], "role": "operator"})) == {"operator_only"}
	admin.decision.allow with input as req(key("operator", ["ops"]), "key.create", {"tenants": ["t9"], "role": "operator"})
}

test_only_the_operator_creates_tenants if {
	codes(req(key("admin", ["t1"]), "tenant.create", {"tenants": ["t1"]})) == {"operator_only"}
	admin.decision.allow with input as req(key("operator", ["ops"]), "tenant.create", {"tenants": ["t2"]})
}

test_a_tenant_admin_changes_its_limits_but_does_not_disable_it if {
	admin.decision.allow with input as req(key("admin", ["t1"]), "tenant.update", {"tenants": ["t1"], "fields": ["limits"]})
	codes(req(key("admin", ["t1"]), "tenant.update", {"tenants": ["t1"], "fields": ["disabled"]})) == {"operator_only"}
	codes(req(key("admin", ["t1"]), "tenant.update", {"tenants": ["t2"], "fields": ["name"]})) == {"tenant_forbidden"}
}

test_a_user_key_administers_nothing if {
	codes(req(key("user", ["t1"]), "key.revoke", {"tenants": ["t1"], "role": "user"})) == {"insufficient_role"}
}

test_another_tenants_data_is_not_found_for_a_tenant_admin if {
	d := admin.decision with input as req(key("admin", ["t1"]), "audit.read", {"tenants": ["t2"]})
	not d.allow
	{r.code | some r in d.deny} == {"not_found"}
}

test_the_operator_reads_across_tenants_and_it_is_marked if {
	d := admin.decision with input as req(key("operator", ["ops"]), "audit.read", {"tenants": ["t2"]})
	d.allow
	d.cross_tenant
}

test_an_own_tenant_read_is_not_cross_tenant if {
	d := admin.decision with input as req(key("admin", ["t1"]), "key.read", {"tenants": ["t1"]})
	d.allow
	not d.cross_tenant
}

test_an_unknown_action_is_refused if {
	codes(req(key("operator", ["ops"]), "tenant.delete", {"tenants": []})) == {"unknown_action"}
}

test_usage_of_another_tenant_is_the_operators_only if {
	codes(req(key("admin", ["t1"]), "usage.read", {"tenants": ["t2"]})) == {"not_found"}
	admin.decision.allow with input as req(key("operator", ["ops"]), "usage.read", {"tenants": ["*"]})
}

test_a_tenant_admin_manages_principals_of_its_own_tenant_only if {
	admin.decision.allow with input as req(key("admin", ["t1"]), "principal.create", {"tenants": ["t1"]})
	codes(req(key("admin", ["t1"]), "principal.create", {"tenants": ["t2"]})) == {"tenant_forbidden"}
	codes(req(key("admin", ["t1"]), "principal.read", {"tenants": ["t2"]})) == {"not_found"}
	admin.decision.allow with input as req(key("operator", ["ops"]), "principal.create", {"tenants": ["t2"]})
	admin.decision.allow with input as req(key("operator", ["ops"]), "principal.read", {"tenants": ["t2"]})
}

test_a_tenant_admin_disables_and_enables_principals_of_its_own_tenant_only if {
	admin.decision.allow with input as req(key("admin", ["t1"]), "principal.disable", {"tenants": ["t1"], "principal": "p-1", "role": "admin"})
	admin.decision.allow with input as req(key("admin", ["t1"]), "principal.enable", {"tenants": ["t1"], "principal": "p-1", "role": "user"})
	codes(req(key("admin", ["t1"]), "principal.disable", {"tenants": ["t2"], "principal": "p-2", "role": "user"})) == {"tenant_forbidden"}
	codes(req(key("admin", ["t1"]), "principal.disable", {"tenants": ["t1"], "principal": "p-3", "role": "operator"})) == {"operator_only"}
	admin.decision.allow with input as req(key("operator", ["ops"]), "principal.disable", {"tenants": ["t2"], "principal": "p-3", "role": "operator"})
}

test_nobody_disables_itself if {
	codes(req(key("operator", ["ops"]), "principal.disable", {"tenants": ["ops"], "principal": "key:k", "role": "operator"})) == {"self_disable"}
}

test_only_the_operator_reads_the_fleet_configuration if {
	codes(req(key("admin", ["t1"]), "config.read", {"tenants": []})) == {"operator_only"}
	codes(req(key("user", ["t1"]), "config.read", {"tenants": []})) == {"operator_only"}
	admin.decision.allow with input as req(key("operator", ["ops"]), "config.read", {"tenants": []})
}

test_a_tenant_admin_manages_expert_templates_of_its_own_tenant_only if {
	admin.decision.allow with input as req(key("admin", ["t1"]), "template.create", {"tenants": ["t1"]})
	admin.decision.allow with input as req(key("admin", ["t1"]), "template.delete", {"tenants": ["t1"]})
	codes(req(key("admin", ["t1"]), "template.update", {"tenants": ["t2"]})) == {"tenant_forbidden"}
	codes(req(key("admin", ["t1"]), "template.read", {"tenants": ["t2"]})) == {"not_found"}
	codes(req(key("user", ["t1"]), "template.create", {"tenants": ["t1"]})) == {"insufficient_role"}
	admin.decision.allow with input as req(key("operator", ["t0"]), "template.update", {"tenants": ["t2"]})
}
