"""The periodic evaluation behind the metrics: every MOE_COMPLIANCE_INTERVAL_S the compliance rules (their
files re-read when changed) -> moe_compliance_rule_status, and the data-health window -> moe_data_health_runs
and moe_data_health_flags, the cache and score checks -> moe_data_health_signals and moe_data_health_signal_flags.
A failure is logged and retried at the next interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from codex_lineage.compliance.engine import Compliance
from codex_lineage.compliance.sources import Sources
from codex_lineage.drift.feedback_signals import CACHE_FLAGS, SCORE_FLAGS, Signals, summarise
from codex_lineage.drift.runs import Runs
from codex_lineage.settings import LineageSettings
from moe_core.runtime.observability.metrics import (
    DATA_HEALTH_FLAGS,
    DATA_HEALTH_RUNS,
    DATA_HEALTH_SIGNAL_FLAGS,
    DATA_HEALTH_SIGNALS,
)

log = logging.getLogger(__name__)


async def publish_drift(runs: Runs, hours: float) -> None:
    summary = await runs.summary(hours)
    for severity, n in summary["by_severity"].items():
        DATA_HEALTH_RUNS.labels(severity).set(n)
    for flag, n in summary["by_flag"].items():
        DATA_HEALTH_FLAGS.labels(flag).set(n)


async def publish_signals(signals: Signals, hours: float) -> None:
    for check, flags in (("cache", CACHE_FLAGS), ("scores", SCORE_FLAGS)):
        found = await (signals.cache(hours) if check == "cache" else signals.scores(hours))
        summary = summarise(found, flags, hours)
        for severity, n in summary["by_severity"].items():
            DATA_HEALTH_SIGNALS.labels(check, severity).set(n)
        for flag, n in summary["by_flag"].items():
            DATA_HEALTH_SIGNAL_FLAGS.labels(flag).set(n)


async def health_loop(settings: LineageSettings, compliance: Compliance, sources: Callable[[], Sources],
                      runs: Runs, signals: Signals) -> None:
    while True:
        for name, step in (("data-health", lambda: publish_drift(runs, settings.drift_window_h)),
                           ("cache and score health", lambda: publish_signals(signals, settings.drift_window_h)),
                           ("compliance", lambda: compliance.evaluate(sources()))):
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive a store or broker outage; one part failing keeps the other
                log.exception("%s evaluation failed; retrying in %.0f s", name, settings.compliance_interval_s)
        await asyncio.sleep(settings.compliance_interval_s)
