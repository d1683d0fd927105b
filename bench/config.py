"""The benchmark's knobs: a full profile (`make bench`), a quick one (`BENCH_QUICK=1`), and CLI overrides."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.scenarios import FLEET_PATHS

REPO = Path(__file__).resolve().parents[1]


@dataclass
class BenchConfig:
    profile: str = "full"
    paths: list[str] = field(default_factory=lambda: list(FLEET_PATHS))
    litellm: bool = True
    concurrency: list[int] = field(default_factory=lambda: [1, 8, 32, 64])
    runs: int = 3
    stream: list[bool] = field(default_factory=lambda: [False, True])
    cell_seconds: float = 3.0  # each cell ends after this many seconds ...
    cell_requests: int = 3000  # ... or this many requests, whichever comes first
    # ... but not before this many requests (up to CELL_LONGEST times cell_seconds): a 3 s cell at c=1 held 17 full
    # requests, too few for a per-request figure the headline can stand on (0: none)
    cell_min_requests: int = 40
    warmup: bool = True  # `concurrency` unrecorded requests before each cell
    neo4j_warm: int = 2000  # graph-rag reads that warm Neo4j's JIT before the cells (bench.neo4j_warm; 0: none)
    # the whole fleet warmed before idle and the cells (bench.fleet_warm): batches of every measured path until every
    # stage ran and Kafka's and Neo4j's CPU per request settled, at most this many (0: none)
    fleet_warm: int = 15
    fleet_warm_requests: int = 20  # per path and batch
    fleet_warm_concurrency: int = 8
    token_samples: int = 5  # requests per path for the token comparison
    sustain_seconds: float = 15.0  # one long full-pipeline cell at the highest concurrency (0 = none)
    probe_messages: int = 200  # Kafka publish/consume probe
    profile_seconds: float = 10  # > 0: py-spy every service while the full pipeline runs this long (flame graphs)
    profile_path: str = "full"  # the path driven while profiling
    # the product as operators run it: the record (codex-lineage: one more consumer of every topic, Postgres writes)
    # and learning (graph-ingest and gap-healer: their model calls follow each answer)
    learning: bool = True
    record: bool = True
    bare: bool = True  # then the same cells again on a fleet without them (result["bare"]: both figures, one run)
    budget_s: float = 720  # from start-up on (the fleet's warm-up not counted), no cell starts after this (a busy
    # machine: fewer cells, said so)
    gateway_workers: int = 1  # the gateway's default (the fleet's other stages are one process each too)
    # LiteLLM as its docs advise for production: workers = CPU count ("Setting workers equal to CPU count gives
    # optimal performance", docs.litellm.ai/docs/benchmarks), no logging callbacks (bench/litellm.yaml)
    litellm_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # streams at scale (bench/streams.py): N SSE streams at once per target, the model taking this long
    streams: list[int] = field(default_factory=lambda: [16, 64, 256])
    streams_model_s: float = 1.0
    out_dir: Path = REPO / "bench" / "results"
    docs: bool = True  # regenerate docs/performance.md and bench/results/latest.*
    fleet_env: dict[str, str] = field(default_factory=dict)
    command: str = "make bench"

    def cells(self) -> int:
        per_fleet = self.runs * len(self.stream) * len(self.concurrency)
        return per_fleet * (1 + int(self.litellm) + len(self.paths)) + (per_fleet * (1 + len(self.paths))
                                                                         if self.bare else 0)

    def without_record_and_learning(self) -> BenchConfig:
        """The bare pass: the same fleet cells (and the direct baseline they are paired with), its sustained cell
        and token comparison, on a fleet without the record and learning; nothing else is measured twice."""
        return replace(self, learning=False, record=False, bare=False, litellm=False, streams=[],
                       profile_seconds=0, neo4j_warm=0, probe_messages=min(self.probe_messages, 20), docs=False)


def quick() -> BenchConfig:
    return BenchConfig(profile="quick", concurrency=[1, 8], runs=1, cell_seconds=1.0, cell_requests=40,
                       cell_min_requests=0,
                       profile_seconds=0, token_samples=2, sustain_seconds=0, probe_messages=50, budget_s=300,
                       streams=[16], fleet_warm=4, fleet_warm_requests=10,
                       command="make bench BENCH_QUICK=1")


def parse(argv: list[str] | None = None) -> BenchConfig:
    parser = argparse.ArgumentParser(prog="python -m bench", description="The fleet's overhead beside LiteLLM's.")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") not in (None, "", "0"),
                        help="a short smoke run (also BENCH_QUICK=1)")
    parser.add_argument("--paths", help="fleet paths, comma separated: full,trivial,cache")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    parser.add_argument("--concurrency", help="comma separated, e.g. 1,8,32,64")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--stream", choices=["both", "yes", "no"])
    parser.add_argument("--seconds", type=float, help="time budget of one cell")
    parser.add_argument("--requests", type=int, help="request budget of one cell")
    parser.add_argument("--min-requests", type=int, help="requests a cell runs at least (up to 4x --seconds)")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--neo4j-warm", type=int, metavar="N",
                        help="graph-rag reads that warm Neo4j before the cells (default 2000; 0: Neo4j as it is)")
    parser.add_argument("--fleet-warm", type=int, metavar="BATCHES",
                        help="at most this many batches warm the whole fleet before idle and the cells (default 15; "
                        "0: none)")
    parser.add_argument("--fleet-warm-requests", type=int, metavar="N", help="requests per path in one warm-up batch")
    parser.add_argument("--fleet-warm-concurrency", type=int, metavar="N", help="the warm-up's concurrency")
    parser.add_argument("--token-samples", type=int)
    parser.add_argument("--sustain", type=float, help="seconds of the sustained full-pipeline cell (0 = none)")
    parser.add_argument("--kafka-probe", type=int, help="messages of the Kafka publish/consume probe")
    parser.add_argument("--profile", type=float, metavar="SECONDS",
                        help="also profile every service with py-spy under full-pipeline load for SECONDS")
    parser.add_argument("--profile-path", choices=FLEET_PATHS, help="the path driven while profiling (default full)")
    parser.add_argument("--budget", type=float, metavar="SECONDS", help="no cell starts after SECONDS")
    parser.add_argument("--learning", action=argparse.BooleanOptionalAction,
                        help="start graph-ingest and gap-healer (their background model calls count too; default on)")
    parser.add_argument("--record", action=argparse.BooleanOptionalAction,
                        help="start codex-lineage, the record (it consumes every topic, writes Postgres; default on)")
    parser.add_argument("--bare", action=argparse.BooleanOptionalAction,
                        help="after the cells, the same cells on a fleet without the record and learning "
                        "(default on when either runs)")
    parser.add_argument("--gateway-workers", type=int)
    parser.add_argument("--litellm-workers", type=int)
    parser.add_argument("--streams", help="streams at scale: N concurrent SSE streams per target, comma separated "
                        "(e.g. 16,64,256; 0 = none)")
    parser.add_argument("--streams-model-s", type=float, help="seconds the slow model takes per completion in the "
                        "streams cells (default 1)")
    parser.add_argument("--out", type=Path, help="directory for <timestamp>.json/.md/.png")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/performance.md or latest.*")
    parser.add_argument("--fleet-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the fleet's services (experiments)")
    args = parser.parse_args(argv)
    cfg = quick() if args.quick else BenchConfig()
    if args.paths is not None:
        cfg.paths = [p for p in args.paths.split(",") if p]
        unknown = set(cfg.paths) - set(FLEET_PATHS)
        if unknown:
            parser.error(f"unknown paths {sorted(unknown)}; choose from {', '.join(FLEET_PATHS)}")
    if args.concurrency:
        cfg.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.streams is not None:
        cfg.streams = [int(n) for n in args.streams.split(",") if int(n) > 0]
    if args.stream:
        cfg.stream = {"both": [False, True], "yes": [True], "no": [False]}[args.stream]
    for name, attr in (("runs", "runs"), ("seconds", "cell_seconds"), ("requests", "cell_requests"),
                       ("min_requests", "cell_min_requests"),
                       ("token_samples", "token_samples"), ("sustain", "sustain_seconds"),
                       ("kafka_probe", "probe_messages"), ("profile", "profile_seconds"),
                       ("profile_path", "profile_path"),
                       ("gateway_workers", "gateway_workers"), ("litellm_workers", "litellm_workers"),
                       ("budget", "budget_s"), ("fleet_warm", "fleet_warm"),
                       ("fleet_warm_requests", "fleet_warm_requests"),
                       ("fleet_warm_concurrency", "fleet_warm_concurrency"), ("out", "out_dir"),
                       ("streams_model_s", "streams_model_s")):
        if getattr(args, name) is not None:
            setattr(cfg, attr, getattr(args, name))
    cfg.litellm = cfg.litellm and not args.no_litellm
    for name in ("learning", "record", "bare"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    cfg.bare = cfg.bare and (cfg.record or cfg.learning)
    cfg.warmup = cfg.warmup and not args.no_warmup
    if args.neo4j_warm is not None:
        cfg.neo4j_warm = max(args.neo4j_warm, 0)
    cfg.docs = cfg.docs and not args.no_docs
    cfg.fleet_env = dict(kv.split("=", 1) for kv in args.fleet_env)
    if argv:
        cfg.command = "python -m bench " + " ".join(argv)
    return cfg
