package moe.egress_test

import data.moe.egress

onprem := {"name": "gpu-1", "region": "de-fra", "sovereignty": "on_premises"}

cloud := {"name": "eu-cloud", "region": "eu-west", "sovereignty": "sovereign_cloud"}

foreign := {"name": "us-api", "region": "us-east", "sovereignty": "public"}

unstated := {"name": "old", "region": "", "sovereignty": ""}

ask(cls, kind, server) := d if {
	d := egress.decision with input as {"class": cls, "kind": kind, "server": server, "model": "m"}
}

test_internal_goes_anywhere if {
	ask("internal", "model", foreign).allow
	ask("internal", "research", {}).allow
	ask("internal", "model", foreign).rule == "open-data-anywhere"
}

test_personal_only_sovereign if {
	ask("personal", "model", onprem).allow
	ask("personal", "model", cloud).allow
	not ask("personal", "model", foreign).allow
	not ask("personal", "model", unstated).allow
	ask("personal", "model", foreign).rule == "protected-data-sovereign-only"
	some d in ask("personal", "model", foreign).deny
	d.code == "data_class_forbidden"
	d.status == 403
	contains(d.reason, "region unstated") == false
}

test_classified_only_on_premises if {
	ask("classified", "model", onprem).allow
	not ask("classified", "model", cloud).allow
	ask("confidential", "model", cloud).allow
	some d in ask("classified", "model", unstated).deny
	contains(d.reason, "sovereignty") == false
	contains(d.reason, "unstated")
}

test_no_research_for_protected_data if {
	not ask("personal", "research", {}).allow
	ask("personal", "research", {}).rule == "no-research-for-protected-data"
}

test_unknown_class_is_refused if {
	not ask("secret", "model", onprem).allow
	ask("secret", "model", onprem).rule == "no-rule-for-class"
}

tool(cls, name, reach) := d if {
	d := egress.decision with input as {"class": cls, "kind": "tool", "model": "", "server": {}, "tool": {"name": name, "reach": reach}}
}

test_protected_data_uses_only_tools_within_the_fleet if {
	tool("personal", "calculate", "fleet").allow
	not tool("personal", "lookup", "external").allow
	not tool("classified", "lookup", "").allow
	tool("personal", "lookup", "external").rule == "protected-data-fleet-tools-only"
	some d in tool("confidential", "lookup", "external").deny
	contains(d.reason, "tool lookup (reach external)")
	tool("internal", "lookup", "external").allow
}

test_a_protected_answer_is_not_kept_in_the_shared_cache if {
	not ask("personal", "cache", {}).allow
	not ask("classified", "cache", {}).allow
	ask("personal", "cache", {}).rule == "no-shared-cache-for-protected-data"
	some d in ask("confidential", "cache", {}).deny
	contains(d.reason, "the shared answer cache")
	ask("internal", "cache", {}).allow
	ask("public", "cache", {}).allow
}
