"""The graph-rag service."""
