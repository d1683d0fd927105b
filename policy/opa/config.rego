# The fleet configuration edited in the console or the admin API (control_plane.fleet_config): inference
# servers, the global model assignment (roles and experts per category) and client profiles.
# input.action: "config.change" | "config.approve" | "config.reject"
# input.resource (config.change): {"section": "servers" | "roles" | "experts" | "profiles", "name": ...,
#   "kind": "add" | "update" | "remove", "fields": [the fields the change sets or alters]}
# input.resource (approve, reject): {"proposer": principal id, "approvers": [principal ids], "section", "name"}
package moe.config

import data.moe.scopes

# Four-eyes where prompts could go somewhere new: a new inference server, or a server's address or credentials
# changed, needs one more person's approval; so does removing a server (a fleet may be drained by one change).
# A model assignment or a client profile moves work between servers the fleet already trusts: no approval.
server_sensitive := {"url", "api_key", "api"}

approvals_required := 1 if {
	input.resource.section == "servers"
	input.resource.kind in {"add", "remove"}
} else := 1 if {
	input.resource.section == "servers"
	some field in input.resource.fields
	field in server_sensitive
} else := 0

deny contains scopes.deny_reason("unknown_action", 400, sprintf("unknown action %q", [input.action])) if {
	not input.action in {"config.change", "config.approve", "config.reject"}
}

deny contains scopes.deny_reason("operator_only", 403, "only the fleet operator changes the fleet's configuration") if {
	not scopes.is_operator
}

deny contains scopes.deny_reason("self_approval", 403, msg) if {
	input.action in {"config.approve", "config.reject"}
	input.principal.id == input.resource.proposer
	msg := sprintf("the proposer may not approve or reject its own configuration change, with any of its keys (four-eyes rule: principal %s proposed it)", [input.resource.proposer])
}

deny contains scopes.deny_reason("approver_not_a_person", 403, msg) if {
	input.action == "config.approve"
	not input.principal.kind == "person" # fails closed: a principal of no stated kind is no person
	msg := sprintf("a configuration change is approved by people: a service account's key may not approve it (principal %s)", [input.principal.id])
}

deny contains scopes.deny_reason("duplicate_approval", 403, "this principal has approved this change already; another must approve") if {
	input.action == "config.approve"
	input.principal.id in input.resource.approvers
}

decision := {"allow": count(deny) == 0, "deny": deny, "approvals_required": approvals_required} if {
	input.action == "config.change"
}

decision := {"allow": count(deny) == 0, "deny": deny} if input.action in {"config.approve", "config.reject"}
