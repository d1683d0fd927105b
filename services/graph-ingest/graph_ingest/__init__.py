"""The graph-ingest service."""
