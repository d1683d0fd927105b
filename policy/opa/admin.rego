# Key and tenant administration, and reads across tenants (docs/security.md, "Two admin scopes").
# A tenant admin (role admin) manages its own tenants' keys and limits; the fleet operator (role operator)
# manages tenants and every key, and reads across tenants where `operator_reads` allows (each such read is
# an audit record of its own).
# input.action: tenant.create | tenant.update | tenant.read | key.create | key.update | key.rotate |
#   key.revoke | key.read | audit.read | usage.read | principal.create | principal.read | principal.disable |
#   principal.enable | config.read (the fleet's configuration: the operator only) | template.create |
#   template.update | template.delete | template.read (a tenant's expert templates, moe_core.llm.tenant_templates)
# input.resource: {"tenants": [tenants the subject belongs to], "role": the new or changed key's role (for a
#   principal: the highest role of its keys), "fields": [changed fields], "principal": the principal changed (a
#   key's: its holder), "principal_kind": that principal's kind (person | service) for key.create and key.rotate}
package moe.admin

import data.moe.scopes

# What an operator may read across tenants (a tenant admin never reads another tenant's data).
operator_reads := {"tenant.read", "key.read", "audit.read", "usage.read", "principal.read", "config.read", "template.read"}

# What a tenant admin may change of its own tenant (disabling a tenant is the operator's).
tenant_admin_fields := {"name", "limits"}

writes := {
	"tenant.create", "tenant.update", "key.create", "key.update", "key.rotate", "key.revoke", "principal.create",
	"principal.disable", "principal.enable", "template.create", "template.update", "template.delete",
}

reads := {"tenant.read", "key.read", "audit.read", "usage.read", "principal.read", "config.read", "template.read"}

subject_tenants := {t | some t in input.resource.tenants}

foreign := subject_tenants - {t | some t in input.principal.tenants}

deny contains scopes.deny_reason("unknown_action", 400, sprintf("unknown action %q", [input.action])) if {
	not input.action in (writes | reads)
}

deny contains scopes.deny_reason("insufficient_role", 403, "this needs an admin key") if {
	input.action in writes
	not scopes.is_admin
}

deny contains scopes.deny_reason("operator_only", 403, "only the fleet operator creates tenants") if {
	input.action == "tenant.create"
	not scopes.is_operator
}

deny contains scopes.deny_reason("tenant_forbidden", 403, msg) if {
	input.action in writes
	not scopes.is_operator
	count(foreign) > 0
	msg := sprintf("a tenant admin manages only its own tenants; not %s", [concat(", ", sort(foreign))])
}

deny contains scopes.deny_reason("operator_only", 403, msg) if {
	input.action == "tenant.update"
	not scopes.is_operator
	some field in input.resource.fields
	not field in tenant_admin_fields
	msg := sprintf("only the fleet operator changes a tenant's %q", [field])
}

deny contains scopes.deny_reason("operator_only", 403, "only the fleet operator manages operator keys") if {
	startswith(input.action, "key.")
	input.action in writes
	not scopes.is_operator
	input.resource.role == "operator"
}

deny contains scopes.deny_reason("operator_only", 403, "only the fleet operator disables or enables a holder of operator keys") if {
	input.action in {"principal.disable", "principal.enable"}
	not scopes.is_operator
	input.resource.role == "operator"
}

deny contains scopes.deny_reason("operator_only", 403, "only the fleet operator reads the fleet's configuration") if {
	input.action == "config.read"
	not scopes.is_operator
}

# A person's keys are that person's alone: made by their own sign-in (the console), by themselves, or by the
# operator's key CLI on the host (an audited bootstrap); no admin mints or rotates a key for another person, so no
# admin can approve as someone else (the four-eyes rule counts people).
deny contains scopes.deny_reason("person_key_forbidden", 403, msg) if {
	input.action in {"key.create", "key.rotate"}
	input.resource.principal_kind == "person"
	input.resource.principal != input.principal.id
	msg := sprintf("a person's keys are their own: only %s may create or rotate a key of theirs (signed in, or the operator's key CLI)", [input.resource.principal])
}

# Nobody locks themselves out (another admin or the operator disables a principal).
deny contains scopes.deny_reason("self_disable", 403, "a principal may not disable itself") if {
	input.action == "principal.disable"
	input.resource.principal == input.principal.id
}

# Another tenant's data is not found for whoever may not read it (nobody learns which ids exist).
deny contains scopes.deny_reason("not_found", 404, "not found") if {
	input.action in reads
	count(foreign) > 0
	not operator_may_read
}

operator_may_read if {
	scopes.is_operator
	input.action in operator_reads
}

decision := {
	"allow": count(deny) == 0,
	"deny": deny,
	# a read of a tenant the principal does not belong to: the caller writes an audit record of it
	"cross_tenant": count(foreign) > 0,
}
