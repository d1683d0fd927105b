"""Anthropic Messages: the request and event shapes (`api`), its error envelope (`errors`), the router and stream frames
(`routes`) and count_tokens (`token_count`)."""
