"""The audit API: a request's record, verified, and the lists of audit events (`api`, `lists`)."""
