"""merger: the fan-in. A plan's results gathered, judged and composed into a draft or an answer, and what the
answer teaches published for ingest."""
