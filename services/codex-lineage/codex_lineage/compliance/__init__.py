"""Compliance checks as code: rule files (policy/compliance/*.yaml), the checks that gather live evidence, the
engine that evaluates them, and the report's renderings."""
