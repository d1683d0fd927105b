"""The edge's protocols, one package each: `openai` (Chat Completions), `anthropic` (Messages, count_tokens),
`responses` (the Responses API and its store) and `models` (the models list both SDKs read). Each package holds
its wire shapes (`api`), its router (`routes`) and its `PROTOCOL` entry; `registry` lists them for the app (routes,
error envelopes, metrics) and the resume (a dropped stream's frames). A fourth protocol is its folder and one line
in the registry."""
