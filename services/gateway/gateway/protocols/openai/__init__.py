"""OpenAI Chat Completions: the request and chunk shapes (`api`) and the router and stream frames (`routes`)."""
