"""planner: a request's first stage. The exact cache and the precision preflight, the semantic cache, the router
and the plan, published as tasks for the experts, tools, research and the graph."""
