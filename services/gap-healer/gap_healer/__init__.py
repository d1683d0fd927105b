"""The gap-healer service."""
