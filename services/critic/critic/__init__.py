"""The critic service."""
