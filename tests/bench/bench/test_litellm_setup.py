"""LiteLLM's proxy is benchmarked as its docs advise for production (bench/litellm.yaml, bench/procs.py):
the launcher's environment and arguments, the config's settings, and its virtualenv able to import the
OpenTelemetry module 1.106.2 imports on every request (without opentelemetry-sdk that import fails each time
and costs about a third of a worker's CPU)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bench import procs

pytestmark = pytest.mark.unit


class _Recorded:
    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.env = name, argv, env or {}


def test_launcher_sets_the_production_environment_and_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(procs, "Proc", _Recorded)
    base, started = procs.launch_litellm("http://127.0.0.1:9", workers=2)
    proc: Any = started
    assert base.startswith("http://127.0.0.1:")
    assert proc.env["LITELLM_MODE"] == "PRODUCTION" and proc.env["LITELLM_LOG"] == "ERROR"
    assert proc.env["PYTHONDONTWRITEBYTECODE"] == ""  # bytecode cached, even under a client that disables it
    assert proc.env["BENCH_LLM_URL"] == "http://127.0.0.1:9/v1" and proc.env["BENCH_LITELLM_KEY"].startswith("sk-")
    argv = proc.argv
    assert argv[argv.index("--num_workers") + 1] == "2"
    assert argv[argv.index("--config") + 1] == str(procs.LITELLM_CONFIG)


def test_config_authenticates_and_does_no_per_request_extras() -> None:
    config = yaml.safe_load(procs.LITELLM_CONFIG.read_text())
    general, settings = config["general_settings"], config["litellm_settings"]
    assert general["master_key"] == "os.environ/BENCH_LITELLM_KEY"  # every request is authenticated
    assert general["disable_spend_logs"] is True and general["disable_error_logs"] is True
    assert settings["callbacks"] == [] and settings["num_retries"] == 0 and settings["set_verbose"] is False
    assert settings["telemetry"] is False and settings["json_logs"] is True
    assert config["router_settings"]["routing_strategy"] == "simple-shuffle"


def test_litellm_venv_pins_the_module_its_auth_loads_per_request() -> None:
    """`make bench` installs .venv-bench from this lock; without opentelemetry-sdk in it, 1.106.2's auth import
    fails on every request (checked against the installed venv by `make bench`'s LiteLLM cells, not here:
    the suite does not install LiteLLM)."""
    lock = (procs.REPO / "bench" / "requirements-litellm.lock").read_text().splitlines()
    pins = {line.split("==")[0] for line in lock if "==" in line and not line.startswith("#")}
    assert {"litellm", "opentelemetry-sdk", "opentelemetry-api"} <= pins
