"""Kafka header keys. Trace context travels in the W3C `traceparent`/`tracestate` headers."""

RESPONSE_ID = "x-moe-response-id"
MESSAGE_TYPE = "x-moe-message-type"
SCHEMA_VERSION = "x-moe-schema-version"
PRODUCER = "x-moe-producer"
# a task and its result: which of the request's tasks (moe_core.runtime.key_ordered, per_task)
TASK_ID = "x-moe-task-id"
DLQ_REASON = "x-moe-dlq-reason"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
