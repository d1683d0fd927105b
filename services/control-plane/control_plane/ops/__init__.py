"""Operations: the operator API (`api`), learned patterns (`patterns`), the inference servers' status and providers
(`providers`, `provider_status`), resources (`resources`) and the configuration API (`config_api`)."""
