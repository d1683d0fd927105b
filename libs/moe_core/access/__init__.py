"""Access: API keys and their principals (`keystore`, `principals`, `auth`, `request_auth`, `key_guard`), limits
and throttling (`limits`, `throttle`), and what a request costs (`settlement`, `settler`, `usage_store`,
`usage_metrics`, `edge_hit`). Built on the LLM domain's token budgets."""
