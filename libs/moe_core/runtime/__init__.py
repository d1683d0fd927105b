"""The runtime every service uses: `bus` (Kafka publishing and subscribing), `settings` (FleetSettings, one env
prefix), `service` (the HTTP app every process serves), `periodic` (its background loops), `stores` (Redis), `pg`
(Postgres schema, roles, migrations), `observability` (logs, metrics, traces), offsets and redelivery
(`key_ordered`, `offset_commits`, `redelivery`, `idempotency`, `redis_batch`), a run's clock and versions
(`run_clock`, `run_versions`), replay of recorded model outputs (`replay`, `inference_errors`), the API's error
envelope (`openai_error`) and the admin APIs' one query-string reader (`query_params`). It imports only
`moe_core.contracts`."""
