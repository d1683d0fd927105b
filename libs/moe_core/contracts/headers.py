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
# set by the content of the message itself (Envelope.header_marks): "1" on a cache hit's Answer, so a consumer that
# wants only answers the fleet composed (the semantic cache's write-behind) skips it unparsed (Consumes.skip_marked)
CACHE_HIT = "x-moe-cache-hit"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
