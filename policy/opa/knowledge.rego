# Knowledge imports (the four-eyes rule): how many approvals a bundle needs and who may approve or reject.
# input.action: "knowledge.import" | "knowledge.approve" | "knowledge.reject"
# input.tenant: the tenant the change set is for
# input.resource (knowledge.import): {"domains": {"resolved": [...], "unresolved_labels": [...]},
#   "entities": n, "relations": n}
# input.resource (approve, reject): {"importer": principal id, "approvers": [principal ids], "status": ...,
#   "approvals_required": n}
package moe.knowledge

import data.moe.domains
import data.moe.scopes

# The domains counted: what the server resolved, and the importer's label only for an item it could not
# resolve (a label can add approvals, never remove them: a resolved medical fact labelled math stays medical).
counted contains d if some d in input.resource.domains.resolved

counted contains d if some d in input.resource.domains.unresolved_labels

approvals_required := max({domains.required(d) | some d in counted}) if count(counted) > 0

approvals_required := domains.default_approvers if count(counted) == 0

deny contains scopes.deny_reason("insufficient_role", 403, "knowledge imports need an admin key") if {
	not scopes.is_admin
}

deny contains scopes.deny_reason("tenant_forbidden", 403, msg) if {
	scopes.is_admin
	not scopes.member(input.tenant)
	msg := sprintf("the principal may not act for tenant %q", [input.tenant])
}

deny contains scopes.deny_reason("self_approval", 403, msg) if {
	input.action in {"knowledge.approve", "knowledge.reject"}
	input.principal.id == input.resource.importer
	msg := sprintf("the importer may not approve or reject its own import, with any of its keys (four-eyes rule: principal %s imported it)", [input.resource.importer])
}

# Four eyes are two people's: where a change set needs two approvals or more, a service account's key does not
# approve (a principal is a person or a service account, moe_core.access.principals; a person's keys come only
# from their own sign-in or the operator's key CLI, admin.rego).
deny contains scopes.deny_reason("approver_not_a_person", 403, msg) if {
	input.action == "knowledge.approve"
	input.resource.approvals_required >= 2
	not input.principal.kind == "person" # fails closed: a principal of no stated kind is no person
	msg := sprintf("this change set needs %d people's approvals: a service account's key may not approve it (principal %s); approve signed in as a person", [input.resource.approvals_required, input.principal.id])
}

deny contains scopes.deny_reason("duplicate_approval", 403, msg) if {
	input.action == "knowledge.approve"
	input.principal.id in input.resource.approvers
	msg := "this principal has approved this change set already (with this or another of its keys); another principal must approve"
}

decision := {
	"allow": count(deny) == 0,
	"deny": deny,
	"approvals_required": approvals_required,
	"domains": sort(counted),
} if input.action == "knowledge.import"

decision := {"allow": count(deny) == 0, "deny": deny} if input.action in {"knowledge.approve", "knowledge.reject"}
