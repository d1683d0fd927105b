# Who a principal is: its role and the tenants it belongs to. Shared by every decision.
# input.principal: {"id": the principal behind the key (moe_core.access.principals: a service account
# "sa-<key id>" or a person; one principal's keys are one actor), "key_id",
# "role": "user" | "admin" (a tenant admin) | "operator" (the fleet operator), "tenants": [...]}
package moe.scopes

admin_roles := {"admin", "operator"}

is_admin if input.principal.role in admin_roles

is_operator if input.principal.role == "operator"

member(tenant) if tenant in input.principal.tenants

# A tenant admin of `tenant`: an admin (or operator) key that belongs to the tenant.
admin_of(tenant) if {
	is_admin
	member(tenant)
}

deny_reason(code, status, reason) := {"code": code, "status": status, "reason": reason}
