"""The DDL of the fleet store's tables (the public schema), one migration per group, applied in order by the
migrator role (moe_core.runtime.pg.migrate). Every statement is idempotent (IF NOT EXISTS, OR REPLACE): a migration
brings any earlier version of the store up to date. The audit store's DDL is moe_core.audit.schema."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    name: str
    tables: tuple[str, ...]  # the declared tables (moe_core.runtime.pg.tables) it creates
    sql: str


KEYS = """
CREATE TABLE IF NOT EXISTS api_keys (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('admin', 'user')),
    tenant_ids  text[] NOT NULL CHECK (cardinality(tenant_ids) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS allowed_models text[];
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS limits jsonb NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS rotated_at timestamptz;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS default_template text;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS data_class text;  -- raises its requests' class (policy/data-classes.yaml)
CREATE TABLE IF NOT EXISTS tenants (
    id          text PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    limits      jsonb NOT NULL DEFAULT '{}',
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (id) SELECT DISTINCT unnest(tenant_ids) FROM api_keys ON CONFLICT DO NOTHING;
CREATE OR REPLACE VIEW api_keys_resolved AS
SELECT k.id, k.name, k.role, k.tenant_ids, k.created_at, k.revoked_at, k.expires_at, k.rotated_at,
       k.allowed_models, k.limits, k.key_hash,
       (SELECT coalesce(jsonb_object_agg(t.id, jsonb_build_object('limits', t.limits, 'disabled', t.disabled)),
                        '{}') FROM tenants t WHERE t.id = ANY(k.tenant_ids)) AS tenants
FROM api_keys k;
"""
# The fleet operator's role (docs/security.md, "Two admin scopes"): the role check of a store made before it is
# replaced once (a tenant admin keeps role admin; the operator's keys are role operator).
KEY_ROLES = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'api_keys_role_check'
                 AND pg_get_constraintdef(oid) LIKE '%operator%') THEN
    ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_role_check;
    ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('admin', 'user', 'operator'));
  END IF;
END $$;
"""
USAGE = """
CREATE TABLE IF NOT EXISTS usage_daily (
    day                date   NOT NULL,
    tenant_id          text   NOT NULL,
    key_id             text   NOT NULL,
    mode               text   NOT NULL,
    model              text   NOT NULL,
    requests           bigint NOT NULL DEFAULT 0,
    prompt_tokens      bigint NOT NULL DEFAULT 0,
    completion_tokens  bigint NOT NULL DEFAULT 0,
    cost_micros        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, tenant_id, key_id, mode, model)
);
CREATE INDEX IF NOT EXISTS usage_daily_key ON usage_daily (key_id, day);
CREATE TABLE IF NOT EXISTS usage_requests (
    response_id        text        PRIMARY KEY,
    day                date        NOT NULL,
    tenant_id          text        NOT NULL,
    key_id             text        NOT NULL,
    mode               text        NOT NULL,
    model              text        NOT NULL,
    prompt_tokens      bigint      NOT NULL,
    completion_tokens  bigint      NOT NULL,
    cost_micros        bigint      NOT NULL,
    outcome            text        NOT NULL,
    settled_by         text        NOT NULL,
    settled_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS usage_requests_key ON usage_requests (key_id, day);
"""

KNOWLEDGE_IMPORTS = """
CREATE TABLE IF NOT EXISTS knowledge_change_sets (
    id                 text PRIMARY KEY,
    tenant             text NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    importer_key       text NOT NULL,
    bundle_digest      text NOT NULL,
    bundle             jsonb NOT NULL,
    diff               jsonb NOT NULL,
    domains            text[] NOT NULL,
    approvals_required integer NOT NULL,
    policy_digest      text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    decided_at         timestamptz,
    decided_by         text,
    note               text NOT NULL DEFAULT '',
    result             jsonb
);
CREATE INDEX IF NOT EXISTS knowledge_change_sets_tenant_status
    ON knowledge_change_sets (tenant, status, created_at DESC);
CREATE TABLE IF NOT EXISTS knowledge_approvals (
    change_set_id text NOT NULL REFERENCES knowledge_change_sets (id),
    key_id        text NOT NULL,
    approved_at   timestamptz NOT NULL DEFAULT now(),
    note          text NOT NULL DEFAULT '',
    PRIMARY KEY (change_set_id, key_id)
);
"""

GRAPH_RUNS = """
CREATE TABLE IF NOT EXISTS graph_runs (
    id          text PRIMARY KEY,
    namespace   text NOT NULL,
    kind        text NOT NULL,
    trigger     text NOT NULL,
    replica     text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text NOT NULL DEFAULT 'running',
    counts      jsonb NOT NULL DEFAULT '{}'::jsonb,
    error       text
);
CREATE INDEX IF NOT EXISTS graph_runs_ns_kind_started ON graph_runs (namespace, kind, started_at DESC);
"""

# Principals: the person or service account behind every key (and console session). Every key that existed
# before becomes its own service account ('sa-' + key id, the same rule ApiKey applies to a key row without
# one), so nothing breaks; the four-eyes tables learn whose key imported and approved.
PRINCIPALS = """
CREATE TABLE IF NOT EXISTS principals (
    id           text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('person', 'service')),
    tenant       text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    email        text,
    oidc_issuer  text,
    oidc_subject text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz,
    CHECK (kind = 'person' OR (email IS NULL AND oidc_subject IS NULL)),
    CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS principals_oidc ON principals (oidc_issuer, oidc_subject)
    WHERE oidc_subject IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS principals_email ON principals (lower(email)) WHERE email IS NOT NULL;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS principal_id text REFERENCES principals (id);
INSERT INTO principals (id, kind, tenant, display_name)
SELECT 'sa-' || k.id, 'service', k.tenant_ids[1], k.name FROM api_keys k WHERE k.principal_id IS NULL
ON CONFLICT DO NOTHING;
UPDATE api_keys SET principal_id = 'sa-' || id WHERE principal_id IS NULL;
CREATE INDEX IF NOT EXISTS api_keys_principal ON api_keys (principal_id);
ALTER TABLE knowledge_change_sets ADD COLUMN IF NOT EXISTS importer_principal text;
UPDATE knowledge_change_sets cs SET importer_principal = coalesce(k.principal_id, 'sa-' || cs.importer_key)
FROM api_keys k WHERE k.id = cs.importer_key AND cs.importer_principal IS NULL;
ALTER TABLE knowledge_approvals ADD COLUMN IF NOT EXISTS principal_id text;
UPDATE knowledge_approvals a SET principal_id = coalesce(k.principal_id, 'sa-' || a.key_id)
FROM api_keys k WHERE k.id = a.key_id AND a.principal_id IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS knowledge_approvals_principal ON knowledge_approvals (change_set_id, principal_id);
"""

# A disabled principal's keys are refused at once: the key checks read its state through this view (the edge and
# the tools' key check never read the principals table itself: names and e-mail addresses are not theirs).
PRINCIPAL_STATE = """
CREATE OR REPLACE VIEW key_principals AS
SELECT k.id, p.disabled_at AS principal_disabled_at
FROM api_keys k LEFT JOIN principals p ON p.id = k.principal_id;
"""

# The four-eyes rule counts people: a key's principal kind (person or service account) is what the policies are
# given with it, read through the same view (the names and e-mail addresses stay in `principals`).
PRINCIPAL_KIND = """
CREATE OR REPLACE VIEW key_principals AS
SELECT k.id, p.disabled_at AS principal_disabled_at, p.kind AS principal_kind
FROM api_keys k LEFT JOIN principals p ON p.id = k.principal_id;
"""

# A knowledge import may name its source document (a tenant document it was curated from): its id, digest, title
# and source, so every fact the import writes leads back to it (docs/codex.md, "Where a fact came from").
KNOWLEDGE_SOURCES = """
ALTER TABLE knowledge_change_sets ADD COLUMN IF NOT EXISTS source_document jsonb;
"""

# Expert templates a tenant admin makes in the console or the admin API (moe_core.llm.tenant_templates); the
# repository's file templates stay every tenant's defaults.
EXPERT_TEMPLATES = """
CREATE TABLE IF NOT EXISTS expert_templates (
    tenant_id   text        NOT NULL,
    name        text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    body        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
"""

# Guardrail rule changes (issue 50, "policy simulated before it is applied"): every simulation of a candidate rule
# file, and the proposals to put a simulated candidate in force, each decided by a second person
# (control_plane.policy.guardrail_changes; policy/opa/guardrails.rego).
GUARDRAIL_CHANGES = """
CREATE TABLE IF NOT EXISTS guardrail_simulations (
    id              text PRIMARY KEY,
    candidate       text NOT NULL,
    rules           text NOT NULL,
    rules_in_force  text NOT NULL,
    days            double precision NOT NULL,
    tenants         text[] NOT NULL,
    summary         jsonb NOT NULL,
    actor_key       text NOT NULL,
    actor_principal text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS guardrail_proposals (
    id                 text PRIMARY KEY,
    simulation_id      text NOT NULL REFERENCES guardrail_simulations (id),
    tenants            text[] NOT NULL,
    changes            jsonb NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    proposer_key       text NOT NULL,
    proposer_principal text NOT NULL,
    note               text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    decided_at         timestamptz,
    decided_key        text,
    decided_principal  text,
    decision_note      text NOT NULL DEFAULT ''
);
-- the rules file an approval wrote: a control plane reconciles only its own file at start
ALTER TABLE guardrail_proposals ADD COLUMN IF NOT EXISTS rules_file text;
-- the fleet (MOE_TOPIC_NAMESPACE) whose recorded traffic was simulated: another fleet on the database (a staging
-- one) neither lists nor decides it (its rules file, traffic and apply lock are its own); rows from before: ''
ALTER TABLE guardrail_simulations ADD COLUMN IF NOT EXISTS namespace text NOT NULL DEFAULT '';
"""

# The fleet configuration changed in the console or the admin API (control_plane.fleet_config): every proposed
# change (who, what, before and after, the approvals the policy asked for, the version it made) and the overlay in
# force, one row per fleet (MOE_TOPIC_NAMESPACE), with its version (moe_core.llm.inference.live). The environment
# stays the default at start.
FLEET_CONFIG = """
CREATE TABLE IF NOT EXISTS fleet_config (
    namespace   text        PRIMARY KEY,
    version     integer     NOT NULL,
    overlay     jsonb       NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  text        NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_config_changes (
    id                  text        PRIMARY KEY,
    namespace           text        NOT NULL,
    section             text        NOT NULL CHECK (section IN ('servers', 'roles', 'experts', 'profiles')),
    name                text        NOT NULL,
    value               jsonb,
    before_shown        jsonb,
    after_shown         jsonb,
    status              text        NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    approvals_required  integer     NOT NULL DEFAULT 0,
    approvals           jsonb       NOT NULL DEFAULT '[]',
    proposed_by         text        NOT NULL,
    proposed_key        text        NOT NULL,
    reason              text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    decided_at          timestamptz,
    version             integer
);
CREATE INDEX IF NOT EXISTS fleet_config_changes_created ON fleet_config_changes (namespace, created_at DESC);
"""

# Egress policy changes (issue 50): a candidate egress module (package moe.egress) simulated on recorded egress
# decisions, proposed, and put in force at OPA by a second person (control_plane.policy.egress_changes;
# policy/opa/policy_changes.rego). One row from its simulation to its decision.
EGRESS_CHANGES = """
CREATE TABLE IF NOT EXISTS egress_policy_changes (
    id                 text PRIMARY KEY,
    candidate          text NOT NULL,
    module             text NOT NULL,
    policy_in_force    text NOT NULL,
    days               double precision NOT NULL,
    summary            jsonb NOT NULL,
    status             text NOT NULL CHECK (status IN ('simulated', 'pending', 'applied', 'rejected')),
    simulated_key      text NOT NULL,
    simulated_principal text NOT NULL,
    proposer_key       text,
    proposer_principal text,
    note               text NOT NULL DEFAULT '',
    decided_key        text,
    decided_principal  text,
    decision_note      text NOT NULL DEFAULT '',
    applied_version    text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    proposed_at        timestamptz,
    decided_at         timestamptz
);
-- the approved module is the one in force (one row per fleet at most), kept in force by the control plane's reconcile
-- (control_plane.policy.egress_reconcile) until a newer reviewed policy/opa/egress.rego supersedes it
ALTER TABLE egress_policy_changes ADD COLUMN IF NOT EXISTS reviewed_file text;  -- its digest when simulated
ALTER TABLE egress_policy_changes ADD COLUMN IF NOT EXISTS in_force boolean NOT NULL DEFAULT false;
ALTER TABLE egress_policy_changes ADD COLUMN IF NOT EXISTS audit_tenants text[];  -- the chains of its events
ALTER TABLE egress_policy_changes ADD COLUMN IF NOT EXISTS pushed_to text;  -- the OPA instance last given it
ALTER TABLE egress_policy_changes ADD COLUMN IF NOT EXISTS superseded_by text;  -- the reviewed file's digest
ALTER TABLE egress_policy_changes ADD COLUMN IF NOT EXISTS superseded_at timestamptz;
-- the fleet it was simulated in (MOE_TOPIC_NAMESPACE): only that fleet's control planes keep it in force at their OPA
ALTER TABLE egress_policy_changes ADD COLUMN IF NOT EXISTS namespace text NOT NULL DEFAULT '';
ALTER TABLE egress_policy_changes DROP CONSTRAINT IF EXISTS egress_policy_changes_status_check;
ALTER TABLE egress_policy_changes ADD CONSTRAINT egress_policy_changes_status_check
    CHECK (status IN ('simulated', 'pending', 'applied', 'rejected', 'superseded'));
-- at most one change in force per fleet: another fleet on the same database (a staging one) keeps its own (one row
-- in force across all fleets refused the second fleet's every approval)
DROP INDEX IF EXISTS egress_policy_changes_in_force;
CREATE UNIQUE INDEX IF NOT EXISTS egress_policy_changes_in_force_per_fleet ON egress_policy_changes (namespace)
    WHERE in_force;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration("keys", ("api_keys", "tenants", "api_keys_resolved"), KEYS),
    Migration("key-roles", (), KEY_ROLES),
    Migration("usage", ("usage_daily", "usage_requests"), USAGE),
    Migration("knowledge-imports", ("knowledge_change_sets", "knowledge_approvals"), KNOWLEDGE_IMPORTS),
    Migration("graph-runs", ("graph_runs",), GRAPH_RUNS),
    Migration("principals", ("principals",), PRINCIPALS),
    Migration("principal-state", ("key_principals",), PRINCIPAL_STATE),
    Migration("knowledge-sources", (), KNOWLEDGE_SOURCES),
    Migration("expert-templates", ("expert_templates",), EXPERT_TEMPLATES),
    Migration("principal-kind", (), PRINCIPAL_KIND),
    Migration("guardrail-changes", ("guardrail_simulations", "guardrail_proposals"), GUARDRAIL_CHANGES),
    Migration("fleet-config", ("fleet_config", "fleet_config_changes"), FLEET_CONFIG),
    Migration("egress-changes", ("egress_policy_changes",), EGRESS_CHANGES),
)
