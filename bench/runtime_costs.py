"""The stage runtime's CPU per message on the real Kafka broker, taken apart (issue 52):

  python -m bench.runtime_costs [N] [--rounds R] [--variants fleet,bare,...] [--profile VARIANT] [--out FILE]

One stage built as the services build theirs (moe_core.stage.consumer.stage_router on a moe_core.runtime.bus.Bus from
make_broker: the run clock and the overhead ledger, the tracing middleware, the stage middleware, key ordering,
the deferred offset commits, the decoder's validation, the bus's stamps and metrics) runs in a process of its own
against the shared Kafka, on two topics of a fresh namespace. A driver (a child of that process, bare aiokafka, its
CPU not counted) sends an ExpertTask of ~2 KB (a tenth of them in a sampled trace, as MOE_TRACE_SAMPLE_RATIO's
default), waits for the TaskResult the stage publishes and sends the next: one record in flight, as at concurrency
1. The stage process's CPU (time.process_time: every thread, the consumer's heartbeats and fetches included) over N
such round trips, divided by N: one consume and one publish of the fleet's runtime, with an echo as the handler.

Variants switch one part off each (patched in the stage process only, never in the product):
  fleet         everything, as the services run
  no-tracing    without the tracing middleware (moe_core.runtime.observability.kafka_tracing)
  no-ledger     the run clock without the overhead ledger's metering (CPU per step)
  no-metrics    without moe_stage_seconds and moe_messages_published_total
  in-flight-1   without key ordering (MOE_CONSUMER_IN_FLIGHT=1: FastStream's own loop)
  commit-each   an offset commit per record (MOE_KAFKA_COMMIT_INTERVAL_MS=0) instead of batched ones
  no-log-context without the response_id bound per message for the log lines
  no-stamps     Bus.publish without its stamps (trace, started_at, versions, model outputs, cost)
  faststream-handling  each record through FastStream's process_message (its context, acknowledgement and logging
                middlewares, parser, fast_depends) instead of the runtime's own (moe_core.stage.direct)
  librdkafka-consumer  everything, consuming with librdkafka (MOE_KAFKA_CONSUMER=librdkafka,
                moe_core.runtime.rdkafka_consumer); aiokafka-consumer: with aiokafka (MOE_KAFKA_CONSUMER=aiokafka)
  bare          no FastStream and no runtime: an aiokafka consumer (group, auto commit) and producer (acks=all,
                idempotent), json.loads of the task and json.dumps of a result: the floor
Variants run alternately, R rounds; printed: the lowest and the median µs of CPU per message of each. `--profile V`:
one run of V under cProfile, its top functions by cumulative time.

For a before/after, run the older tree's libs first on PYTHONPATH (`git archive <rev> libs | tar -x -C /tmp/before`,
`PYTHONPATH=.:/tmp/before/libs python -m bench.runtime_costs`). It reads the infrastructure's endpoints and the
Kafka admin's credentials as the bench does (bench.infra); it starts nothing: Kafka must be running.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import uuid
from typing import Any

VARIANTS = ("fleet", "no-tracing", "no-ledger", "no-metrics", "in-flight-1", "commit-each", "no-log-context",
            "no-stamps", "faststream-handling", "librdkafka-consumer", "aiokafka-consumer", "bare")
WARMUP = 200


def _kafka_env() -> dict[str, str]:
    from bench import infra

    env = dict(infra.kafka_admin_env())
    env["MOE_KAFKA_BOOTSTRAP"] = infra.endpoints()["kafka"]
    return env


def one(variant: str, n: int, profile: bool = False) -> dict[str, Any]:
    """One variant in a fresh process of its own (its patches stay there); its figures as JSON."""
    namespace = "rtcost" + uuid.uuid4().hex[:8]
    env = {**os.environ, **_kafka_env(), "MOE_TOPIC_NAMESPACE": namespace}
    args = [sys.executable, "-m", "bench.runtime_stage", variant, str(n), namespace, *(["--profile"] * profile)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{variant}: exit {done.returncode}\n{done.stderr[-3000:]}")
    if profile:
        print(done.stderr[-12000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> None:
    n = next((int(a) for a in argv if a.isdigit()), 2000)
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
    variants = (argv[argv.index("--variants") + 1].split(",") if "--variants" in argv else list(VARIANTS))
    if "--profile" in argv:
        print(one(argv[argv.index("--profile") + 1], n, profile=True))
        return
    runs: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):  # alternated: each round runs every variant once, so drifting load hits all alike
        for variant in variants:
            runs[variant].append(one(variant, n)["cpu_us_per_message"])
            print(f"round {r + 1} {variant}: {runs[variant][-1]} µs", file=sys.stderr)
    load = os.getloadavg()
    print(f"{n} messages per run (after {WARMUP} unmeasured), {rounds} rounds, load average {load[0]:.1f}; "
          "CPU µs per message (one consume + one publish) of the stage process:")
    base = min(runs["fleet"]) if runs.get("fleet") else None
    for variant, values in runs.items():
        diff = f"  {min(values) - base:+7.1f} vs fleet" if base is not None and variant != "fleet" else ""
        print(f"  {variant:15s} lowest {min(values):7.1f}  median {statistics.median(values):7.1f}  "
              f"runs {', '.join(f'{v:.0f}' for v in values)}{diff}")
    if "--out" in argv:
        with open(argv[argv.index("--out") + 1], "w") as out:
            json.dump({"messages": n, "rounds": rounds, "load": load, "runs": runs}, out, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
