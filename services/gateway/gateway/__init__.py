"""gateway: the edge. The three protocols (OpenAI chat completions, Anthropic messages, OpenAI Responses) and
the models list, each request authenticated, limited, published as a ChatRequest and answered from the bus as JSON
or SSE."""
