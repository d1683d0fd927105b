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

# An item the server could not resolve needs at least the default number of approvers whatever its label says
# (a `math` label does not make an unknown name math): a domain that needs none (math) needs none only when
# every item of the bundle positively resolves to it.
floor contains domains.default_approvers if count(input.resource.domains.unresolved_labels) > 0

floor contains domains.default_approvers if count(counted) == 0

approvals_required := max({domains.required(d) | some d in counted} | floor)

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

# An approval is a person's: a service account's key never approves, whatever the number needed (a principal is
# a person or a service account, moe_core.access.principals; a person is bound to the identity provider's subject
# and its keys come only from their own sign-in or the operator's key CLI, admin.rego). A tenant admin can make
# service accounts at will, so counting them would let one admin approve alone.
deny contains scopes.deny_reason("approver_not_a_person", 403, msg) if {
	input.action == "knowledge.approve"
	not input.principal.kind == "person" # fails closed: a principal of no stated kind is no person
	msg := sprintf("a change set is approved by people: a service account's key may not approve it (principal %s); approve signed in as a person", [input.principal.id])
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
