"""The OpenAI Responses API: its shapes (`api`), the router and stream frames (`routes`) and the stored responses
(`store`: previous_response_id, GET)."""
