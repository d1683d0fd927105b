"""fleetctl's Prometheus: the generated configuration scrapes every service of the registry on its port,
loads the alert rules, and is valid for Debian's prometheus (promtool check config)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fleetlib import config, prometheus, registry

import moe_core.stage.registry as stage_registry

pytestmark = pytest.mark.unit


def test_every_service_is_a_scrape_job_on_its_port() -> None:
    targets = prometheus.fleet_targets()
    for service in stage_registry.FLEET:
        assert targets[service.name] == [f"{config.HOST}:{config.port(service.name)}"]
    assert set(targets) == {*stage_registry.names(), "opa", "prometheus"}  # opa: MoEPolicyEngineDown
    assert registry.BY_NAME["prometheus"].group == "infra"


def test_generated_config_is_valid_and_loads_the_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: the install step (fleetctl install) installs Debian's prometheus"
    conf = prometheus.write_config(tmp_path / "prometheus.yml", prometheus.fleet_targets())
    parsed = yaml.safe_load(conf.read_text())
    assert parsed["rule_files"] == [str(prometheus.RULES)] and prometheus.RULES.is_file()
    assert {job["job_name"] for job in parsed["scrape_configs"]} == set(prometheus.fleet_targets())
    assert all(job["metrics_path"] == "/metrics" for job in parsed["scrape_configs"])
    result = subprocess.run([promtool, "check", "config", str(conf)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = prometheus.write_config(tmp_path / "broken.yml", prometheus.fleet_targets(), interval="soon")
    assert subprocess.run([promtool, "check", "config", str(broken)], capture_output=True, timeout=60,
                          check=False).returncode != 0


def test_argv_binds_to_loopback(tmp_path: Path) -> None:
    argv = prometheus.argv(tmp_path / "p.yml", tmp_path / "data", 19999)
    assert argv[0].endswith("prometheus")
    assert f"--web.listen-address={config.HOST}:19999" in argv
    assert f"--storage.tsdb.path={tmp_path / 'data'}" in argv
