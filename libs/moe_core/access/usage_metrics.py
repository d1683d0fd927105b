"""Usage as Prometheus counters, in two expositions. The open /metrics (what every scrape job reads) has
usage by mode only: no tenant id, key id or client-chosen model id is on the public port. The same figures
per tenant, key, mode and model are served to admin keys only, at GET /v1/admin/metrics (a scrape job with
`authorization: {credentials_file: <an admin key>}` and `metrics_path: /v1/admin/metrics`, the edge's
gateway.tenant_metrics). Each edge process counts what it settled, like every other counter."""

from __future__ import annotations

from moe_core.runtime.observability.metrics import (
    GATEWAY_USAGE_COST,
    GATEWAY_USAGE_REQUESTS,
    GATEWAY_USAGE_TOKENS,
    TENANT_USAGE_COST,
    TENANT_USAGE_REQUESTS,
    TENANT_USAGE_TOKENS,
)


def count_usage(tenant_id: str, key_id: str, mode: str, model: str, requests: int, prompt_tokens: int,
                completion_tokens: int, cost_micros: int | None) -> None:
    labels = (tenant_id, key_id, mode, model)
    for counter, named in ((GATEWAY_USAGE_REQUESTS, (mode,)), (TENANT_USAGE_REQUESTS, labels)):
        counter.labels(*named).inc(requests)
    for counter, named in ((GATEWAY_USAGE_TOKENS, (mode,)), (TENANT_USAGE_TOKENS, labels)):
        counter.labels(*named, "prompt").inc(prompt_tokens)
        counter.labels(*named, "completion").inc(completion_tokens)
    if cost_micros is not None:
        GATEWAY_USAGE_COST.labels(mode).inc(cost_micros / 1_000_000)
        TENANT_USAGE_COST.labels(*labels).inc(cost_micros / 1_000_000)
