"""expert-worker: an expert task answered by the models of its category and tier, scored and published as a
result."""
