"""Kafka header keys. Trace context travels in the W3C `traceparent`/`tracestate` headers."""

RESPONSE_ID = "x-moe-response-id"
MESSAGE_TYPE = "x-moe-message-type"
SCHEMA_VERSION = "x-moe-schema-version"
PRODUCER = "x-moe-producer"
# who signed the message (a service of the registry) and its Ed25519 signature (moe_core.runtime.producer_signing)
SIGNER = "x-moe-signer"
SIGNATURE = "x-moe-sig"
# a task and its result: which of the request's tasks (moe_core.runtime.key_ordered, per_task)
TASK_ID = "x-moe-task-id"
DLQ_REASON = "x-moe-dlq-reason"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
