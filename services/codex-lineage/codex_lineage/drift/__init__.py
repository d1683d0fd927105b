"""Data health: drift checks over the knowledge graph's ingest runs (the seed's six flags and its severity
ladder), read from the audit chain codex-lineage keeps."""
