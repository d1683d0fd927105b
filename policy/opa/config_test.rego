package moe.config_test

import data.moe.config

operator := {"id": "alice", "kind": "person", "role": "operator", "tenants": []}

change(section, kind, fields) := {
	"action": "config.change", "principal": operator,
	"resource": {"section": section, "name": "x", "kind": kind, "fields": fields},
}

test_a_new_server_needs_an_approval if {
	config.decision.approvals_required == 1 with input as change("servers", "add", ["url", "models"])
}

test_a_server_address_changed_needs_an_approval if {
	config.decision.approvals_required == 1 with input as change("servers", "update", ["url"])
}

test_a_server_model_list_changed_needs_none if {
	d := config.decision with input as change("servers", "update", ["models", "timeout_s"])
	d.allow
	d.approvals_required == 0
}

test_an_assignment_needs_none if {
	config.decision.approvals_required == 0 with input as change("roles", "update", ["judge"])
}

test_a_tenant_admin_is_refused if {
	d := config.decision with input as object.union(
		change("roles", "update", ["judge"]),
		{"principal": {"id": "bob", "kind": "person", "role": "admin", "tenants": ["t"]}},
	)
	not d.allow
}

test_the_proposer_does_not_approve if {
	d := config.decision with input as {
		"action": "config.approve", "principal": operator,
		"resource": {"proposer": "alice", "approvers": []},
	}
	not d.allow
}

test_a_service_account_does_not_approve if {
	d := config.decision with input as {
		"action": "config.approve",
		"principal": {"id": "sa-1", "kind": "service", "role": "operator", "tenants": []},
		"resource": {"proposer": "alice", "approvers": []},
	}
	not d.allow
}

test_another_person_approves if {
	d := config.decision with input as {
		"action": "config.approve",
		"principal": {"id": "carol", "kind": "person", "role": "operator", "tenants": []},
		"resource": {"proposer": "alice", "approvers": []},
	}
	d.allow
}
