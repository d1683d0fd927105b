"""The research service."""
