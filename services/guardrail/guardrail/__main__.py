"""The guardrail service."""
from guardrail.settings import GuardrailSettings
from moe_core.runtime.service import run

if __name__ == "__main__":
    run("guardrail.app:create_app", GuardrailSettings())
