# Where a request of a data class may go (issue 50): the inference servers and models that may answer it, whether
# its question may leave the fleet for web research, whether its answer may enter the shared answer cache (served
# again to other people of the tenant), and which precision tools its tasks may run (a tool whose call leaves the
# fleet is egress too; mcp runs no tool the decision did not permit). Asked by the planner for each (role, server, model) a request
# could reach, before anything is sent; cached per policy version (moe_core.policy.egress), so no decision is asked per
# call or token. Every decision is an egress record in the signed audit log (class, server, model, region, outcome,
# rule, policy version).
# input.class: the request's data class (policy/data-classes.yaml; the highest of its tenant's, key's, template's
#              and the client's header)
# input.kind: "model" (an inference server and model) | "research" (web research: the question leaves the fleet)
#             | "cache" (the shared answer cache) | "tool" (a precision tool)
# input.server: {"name", "region", "sovereignty"} (INFERENCE_SERVERS; "" when the server does not say)
# input.model: the model's name
# input.tool: {"name", "reach"} for kind tool; reach "fleet" (computed within the fleet) | "external" (leaves it)
package moe.egress

# Where a server's operator runs it: on our own premises, a sovereign cloud under the operator's jurisdiction, or a
# public (foreign) provider. A server that does not say is taken as the least: it is not proven to be sovereign.
sovereign := {"on_premises", "sovereign_cloud"}

# The rules, in order: the first whose classes hold the request's class and whose `where` the target meets decides.
# `where`: "any" (every target), "sovereign" (a server in `sovereign`), "on_premises" (our own servers only),
# "never" (nothing of that kind).
rules := [
	{"id": "classified-on-premises-only", "classes": {"classified"}, "kinds": {"model"}, "where": "on_premises"},
	{
		"id": "protected-data-sovereign-only", "classes": {"confidential", "personal"}, "kinds": {"model"},
		"where": "sovereign",
	},
	{
		"id": "no-research-for-protected-data", "classes": {"confidential", "personal", "classified"},
		"kinds": {"research"}, "where": "never",
	},
	# A protected answer is not kept for others: the semantic and exact caches are shared by everyone of a tenant
	# (a hospital's wards, a bank's desks), outlive the request and are no part of the signed record's erasure. So a
	# protected request is answered afresh each time, and its answer is cached for nobody (it may still be answered
	# from an entry an open-data request left).
	{
		"id": "no-shared-cache-for-protected-data", "classes": {"confidential", "personal", "classified"},
		"kinds": {"cache"}, "where": "never",
	},
	{
		"id": "protected-data-fleet-tools-only", "classes": {"confidential", "personal", "classified"},
		"kinds": {"tool"}, "where": "fleet",
	},
	{
		"id": "open-data-anywhere", "classes": {"public", "internal"}, "kinds": {"model", "research", "cache", "tool"},
		"where": "any",
	},
]

meets("any")

meets("sovereign") if input.server.sovereignty in sovereign

meets("on_premises") if input.server.sovereignty == "on_premises"

meets("fleet") if input.tool.reach == "fleet"

applies(rule) if {
	input.class in rule.classes
	input.kind in rule.kinds
}

# The first rule that applies (a class no rule names: none, so it is refused: fail closed).
matched := [r | some r in rules; applies(r)][0]

allow if meets(matched.where)

deny contains {"code": "data_class_forbidden", "status": 403, "reason": reason} if {
	not allow
	reason := sprintf("%s data may not reach %s (rule %s)", [input.class, target, rule_id])
}

target := sprintf("server %s (%s, region %s), model %s", [
	input.server.name, stated(input.server, "sovereignty"), stated(input.server, "region"), input.model,
]) if input.kind == "model"

target := tool_target if input.kind == "tool"

target := "the shared answer cache" if input.kind == "cache"

default target := "web research"

tool_target := sprintf("tool %s (reach %s)", [input.tool.name, stated(input.tool, "reach")])

stated(obj, key) := obj[key] if obj[key] != ""

else := "unstated"

rule_id := matched.id

default rule_id := "no-rule-for-class"

default allow_flag := false

allow_flag if allow

decision := {"allow": allow_flag, "deny": deny, "rule": rule_id}
