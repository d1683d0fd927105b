from pydantic import Field
from pydantic_settings import SettingsConfigDict

from moe_core.runtime.settings import FleetSettings


class LineageSettings(FleetSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    service_name: str = "codex-lineage"
    http_port: int = 8109
    lineage_namespace: str = Field(default="moe-sovereign", description="OpenLineage job namespace")
    lineage_transport: str = Field(
        default="", description="JSON config of an extra openlineage-python transport (http, kafka, file, console, "
                                "composite), e.g. {\"type\": \"http\", \"url\": \"http://marquez:5000\"}; "
                                "empty: the events are only stored in Postgres")
    lineage_facet_base: str = Field(
        default="http://127.0.0.1:8109/api/v1/facets",
        description="Base of the fleet's facet _schemaURLs (codex-lineage serves them at /api/v1/facets/<Name>.json); "
                    "set it to this service's public address; keep it stable: it is part of every stored event")
    neo4j_url: str = Field(default="bolt://127.0.0.1:7687", description="Dataset namespace of the knowledge graph")
    chroma_url: str = Field(default="http://127.0.0.1:8000", description="Dataset namespace of the caches")
    lineage_batch_records: int = Field(default=200, ge=1, le=5000,
                                       description="Records stored per transaction (a consumer batch)")
    lineage_fetch_max_bytes: int = Field(
        default=4 * 1024 * 1024, ge=256 * 1024,
        description="The most one fetch of the record's consumer brings (aiokafka's fetch_max_bytes, default 50 MB): "
                    "what it holds when it falls behind the fleet; a larger record still arrives, alone")
    lineage_partition_fetch_bytes: int = Field(
        default=256 * 1024, ge=16 * 1024,
        description="The most one fetch brings of one partition (aiokafka's max_partition_fetch_bytes, default 1 MB: "
                    "times the fleet's partitions, it was the bound)")
    lineage_hold_max_s: float = Field(
        default=15.0, gt=0, le=300,
        description="While the audit store is down, a batch is held (nothing committed) and fetched again after a "
                    "pause: 0.5 s, doubling up to this (codex_lineage.holding)")
    max_event_bytes: int = Field(default=1_000_000, ge=1024, description="POST /api/v1/lineage: largest body")
    audit_signing_key: str = Field(default="", description="codex-lineage's Ed25519 signing key (PEM file, mode "
                                                           "0600): signs every audit entry and checkpoint")
    audit_tsa_url: str = Field(default="", description="RFC 3161 timestamp authority that anchors the checkpoints "
                                                       "(empty: checkpoints are signed but not timestamped)")
    audit_allow_unanchored: bool = Field(default=False, description="Run without the anchors (timestamp authority, "
                                         "witness) on purpose: Helm's audit.allowUnanchored; the compliance rules "
                                         "on anchoring then fail, naming it")
    audit_tsa_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one timestamp request")
    audit_checkpoint_interval_s: float = Field(default=60.0, ge=0.2, description="How often the tenants' chains "
                                                                                 "are checkpointed (when they grew)")
    audit_checkpoint_max_age_s: float = Field(default=3600.0, ge=1, description="A chain that did not grow still "
                                                                               "gets a checkpoint this often")
    audit_tree_recheck_s: float = Field(
        default=3600.0, ge=0, description="How often each tenant's leaves below its last checkpoint are read again "
                                          "and must give the root it signed (a change below it is found then); "
                                          "between, a checkpoint extends the last one's compact range; 0: at every "
                                          "checkpoint (every leaf read each time)")
    audit_remembered_signatures: int = Field(
        default=100_000, ge=0, description="The most entry signatures codex-lineage keeps in memory (~170 bytes each: "
                                           "17 MB at most) between committing an entry and the next checkpoint's "
                                           "check, which needs no Ed25519 verification of a remembered one; beyond "
                                           "it the oldest are forgotten and verified (the fleet's rate times the "
                                           "checkpoint interval is what the checkpoints meet; 0: every one verified)")
    audit_writer_dsn: str = Field(default="", description="codex-lineage's own role for the audit store (SELECT and "
                                                          "INSERT only); empty: MOE_POSTGRES_DSN")
    audit_migrator_dsn: str = Field(default="", description="The audit store's owner, for python -m codex_lineage."
                                                            "migrate and rebuild's scratch schemas; empty: "
                                                            "MOE_POSTGRES_DSN")
    audit_writer_role: str = Field(default="", description="The migration grants this role SELECT and INSERT")
    audit_reader_roles: str = Field(default="", description="Comma list: the migration grants them SELECT only")
    audit_migrate_on_start: bool = Field(default=False, description="Migrate at start with MOE_POSTGRES_DSN (a "
                                                                    "single-role set-up, e.g. a test fleet)")
    audit_witness_url: str = Field(default="", description="The witness (c2sp.org/tlog-witness) that cosigns every "
                                                           "checkpoint (with MOE_AUDIT_WITNESS_KEY); empty: none")
    audit_checkpoint_file: str = Field(default="", description="Append every checkpoint as a JSON line to this "
                                                               "file (keep it out of the database's reach)")
    compliance_rules_dir: str = Field(
        default="policy/compliance", description="The compliance rule files (YAML, one per framework); a relative "
                                                 "path is looked up in the working directory, then the repository")
    compliance_interval_s: float = Field(default=300.0, ge=1, description="How often the compliance rules are "
                                         "evaluated for the metric moe_compliance_rule_status (and re-read when "
                                         "their files changed)")
    compliance_documents: str = Field(
        default="", description="JSON {document: path} of the documents the rules ask to be on file (dpia, "
                                "ropa, risk_assessment, ...); a missing entry fails its rule")
    compliance_alert_rules: str = Field(
        default="grafana/alerts/moe-fleet.rules.yaml",
        description="The Prometheus alert rule file the monitoring rules read (relative: working directory, then "
                    "the repository)")
    compliance_prometheus_url: str = Field(
        default="", description="A Prometheus whose loaded rules the monitoring rules check too (empty: the rule "
                                "file only)")
    compliance_backups_dir: str = Field(
        default="", description="Where the backup tool (python -m control_plane.ops.backup) writes its backups: the "
                                "backups rules read the newest one's manifest.json (empty: only Postgres WAL "
                                "archiving is known)")
    knowledge_policy: str = Field(default="policy/knowledge-imports.yaml",
                                  description="The knowledge-import policy the oversight rules read (the control "
                                              "plane's MOE_KNOWLEDGE_POLICY)")
    drift_threshold: float = Field(default=0.3, gt=0, lt=1, description="Data health: how far an ingest run's "
                                   "actual growth may differ from what it declared (share) before a warn flag")
    drift_min_declared: int = Field(default=5, ge=1, description="Data health: the flag zero_entities_added is "
                                    "crit from this many entities a run had to add on (warn below)")
    drift_window_h: float = Field(default=24.0, gt=0, description="Data health: the window of the metric "
                                  "moe_data_health_runs and of the compliance rules that read drift")
    drift_baseline_h: float = Field(default=168.0, gt=0, description="Data health of the cache and the scores: the "
                                    "hours before the window that the window is compared with")
    drift_min_ratings: int = Field(default=3, ge=1, description="Data health: ratings a window (and its baseline) "
                                   "needs before cache_false_hits or score_drop is judged")
    drift_false_hit_rate: float = Field(default=0.3, gt=0, le=1, description="Data health: the share of rated cache "
                                        "hits rated 1-2 that raises cache_false_hits (warn; crit from twice it)")
    drift_hit_rate_drop: float = Field(default=0.5, gt=0, lt=1, description="Data health: cache_hit_rate_drop when "
                                       "the hit rate fell by this share of the baseline's")
    drift_min_answers: int = Field(default=10, ge=1, description="Data health: answers a window and its baseline "
                                   "need before cache_hit_rate_drop is judged")
    drift_score_drop: float = Field(default=0.25, gt=0, lt=1, description="Data health: a fall of a model's score "
                                    "for a category by this much raises score_drop (warn; crit from twice it)")
    drift_score_stale_h: float = Field(default=72.0, gt=0, description="Data health: score_stale when a model x "
                                       "category rated in the baseline has had no rating for this many hours")
    evidence_max_days: float = Field(default=31.0, gt=0, description="Evidence bundles: the longest period one bundle "
                                     "may cover (a longer one is refused with this limit: export it in parts)")
    data_classes_file: str = Field(default="policy/data-classes.yaml", description="The data classes of the catalog's "
                                   "datasets and the tenants' requests, and where each class may go (relative: working "
                                   "directory, then the repository); a file that does not parse refuses the start")
    lineage_tracemalloc_s: float = Field(
        default=0.0, ge=0, description="A leak hunt, never in production: every this many seconds codex-lineage logs "
                                       "its resident memory and the allocation sites (tracemalloc) that grew most "
                                       "(codex_lineage.memory_trace); 0: off, nothing traced")
    lineage_tracemalloc_top: int = Field(default=12, ge=1, le=200, description="The sites each snapshot logs")
    lineage_tracemalloc_frames: int = Field(default=1, ge=1, le=50, description="Frames kept per allocation (1: "
                                            "grouped by line; more: by call path, at a higher cost)")
    catalog_file: str = Field(default="docs/catalog.json", description="The data catalog generated from the "
                              "declarations by `make schemas` (relative: working directory, then the repository)")
