/**
 * Versioned migrations for the NEXUS schema (default `nexus_core`). Append only: a published
 * migration never changes; a change is a new version. `{schema}` is replaced by the quoted schema name.
 */

export interface Migration {
  version: number
  name: string
  sql: string
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'core tables',
    sql: /* sql */ `
create table {schema}.users (
  id             uuid primary key default gen_random_uuid(),
  username       text not null unique check (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
  password_hash  text not null,
  roles          text[] not null default '{viewer}'
                 check (roles <@ array['admin','operator','agent','viewer']::text[]),
  disabled       boolean not null default false,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  last_login_at  timestamptz
);

-- RS256 signing keys. status: active (signs new tokens), passive (verifies only, still in the JWKS),
-- retired (out of the JWKS once every token it signed has expired).
create table {schema}.signing_keys (
  kid            text primary key check (kid ~ '^[A-Za-z0-9_-]{1,64}$'),
  alg            text not null default 'RS256',
  public_jwk     jsonb not null,
  private_key    text not null,            -- encrypted at rest (see docs), never returned by the API
  status         text not null check (status in ('active','passive','retired')),
  created_at     timestamptz not null default now(),
  rotated_at     timestamptz,
  verify_until   timestamptz               -- drops out of the JWKS after this instant
);
create unique index signing_keys_one_active on {schema}.signing_keys ((true)) where status = 'active';

-- One row per issued access token (login). Revocation sets revoked_at; the jti is also cached in the bus.
create table {schema}.human_sessions (
  jti            text primary key,
  user_id        uuid not null references {schema}.users(id) on delete cascade,
  kid            text not null,
  issued_at      timestamptz not null default now(),
  expires_at     timestamptz not null,
  revoked_at     timestamptz,
  client_ip      text,
  user_agent     text
);
create index human_sessions_user on {schema}.human_sessions (user_id, issued_at desc);
create index human_sessions_revoked on {schema}.human_sessions (expires_at) where revoked_at is not null;

create table {schema}.agents (
  agent_id       text primary key check (agent_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  name           text not null,
  capabilities   text[] not null default '{}',
  metadata       jsonb not null default '{}',
  owner_id       uuid references {schema}.users(id) on delete set null,
  registered_at  timestamptz not null default now(),
  last_seen_at   timestamptz not null default now(),
  updated_at     timestamptz not null default now()
);
create index agents_owner on {schema}.agents (owner_id);
create index agents_capabilities on {schema}.agents using gin (capabilities);

create table {schema}.agent_state (
  agent_id       text not null references {schema}.agents(agent_id) on delete cascade,
  key            text not null check (length(key) between 1 and 256),
  value          jsonb not null,
  updated_at     timestamptz not null default now(),
  primary key (agent_id, key)
);

-- Routing: a command without agent_id goes to the best enabled rule that matches (lowest priority
-- number first), then to an online agent with the rule's capability, or to the rule's agent.
create table {schema}.routing_rules (
  id             bigint generated always as identity primary key,
  name           text not null,
  pattern        text,                    -- case-insensitive regular expression over the command text
  capability     text,
  agent_id       text references {schema}.agents(agent_id) on delete cascade,
  priority       integer not null default 100,
  enabled        boolean not null default true,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  check (capability is not null or agent_id is not null)
);
create index routing_rules_order on {schema}.routing_rules (priority, id) where enabled;

create table {schema}.commands (
  command_id       uuid primary key default gen_random_uuid(),
  seq              bigint generated always as identity unique,
  text             text not null,
  agent_id         text references {schema}.agents(agent_id) on delete set null,
  status           text not null default 'queued'
                   check (status in ('queued','dispatched','completed','failed')),
  result           text,
  data             jsonb,
  error            text,
  priority         integer not null default 0,
  attempts         integer not null default 0,
  max_attempts     integer not null default 5,
  available_at     timestamptz not null default now(),   -- retry backoff: not claimable before this
  lease_token      uuid,
  lease_expires_at timestamptz,
  routed_by_rule   bigint,
  created_by       uuid,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  dispatched_at    timestamptz,
  finished_at      timestamptz
);
create index commands_claim on {schema}.commands (agent_id, priority desc, seq) where status = 'queued';
create index commands_leases on {schema}.commands (lease_expires_at) where status = 'dispatched';
create index commands_by_status on {schema}.commands (status, seq desc);
create index commands_by_agent on {schema}.commands (agent_id, seq desc);

-- The event log behind the live streams. ids only grow, and are assigned in commit order (writers
-- serialize on an advisory lock), so a reader resuming after id N never misses a later commit.
create table {schema}.events (
  id             bigint generated always as identity primary key,
  type           text not null check (type ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  command_id     uuid,
  agent_id       text,
  payload        jsonb not null default '{}',
  actor          text,
  created_at     timestamptz not null default now()
);
create index events_type on {schema}.events (type, id);
create index events_command on {schema}.events (command_id, id) where command_id is not null;

-- Gateway keys: only a hash is stored; the key is shown once at creation.
create table {schema}.gateway_keys (
  id             uuid primary key default gen_random_uuid(),
  name           text not null,
  key_hash       text not null unique,
  key_prefix     text not null,
  allowed_models text[],                  -- null: every model
  rpm_limit      integer,
  tpm_limit      integer,
  budget_tokens  bigint,
  used_tokens    bigint not null default 0,
  created_by     uuid references {schema}.users(id) on delete set null,
  created_at     timestamptz not null default now(),
  expires_at     timestamptz,
  revoked_at     timestamptz,
  last_used_at   timestamptz
);

create table {schema}.model_aliases (
  alias          text primary key check (alias ~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$'),
  target         text not null,
  params         jsonb not null default '{}',
  pool           text,
  enabled        boolean not null default true,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now()
);

create table {schema}.gateway_usage (
  id                bigint generated always as identity primary key,
  created_at        timestamptz not null default now(),
  key_id            uuid,
  subject           text,
  model             text not null,
  upstream_model    text,
  host              text,
  stream            boolean not null default false,
  prompt_tokens     integer not null default 0,
  completion_tokens integer not null default 0,
  latency_ms        integer,
  ttft_ms           integer,
  status            integer not null,
  error_code        text
);
create index gateway_usage_time on {schema}.gateway_usage (created_at);
create index gateway_usage_key on {schema}.gateway_usage (key_id, created_at);
`,
  },
  {
    version: 2,
    name: 'agents: last reported status, for online/offline transition events',
    sql: /* sql */ `
alter table {schema}.agents add column status text not null default 'online' check (status in ('online','offline'));
create index agents_seen on {schema}.agents (status, last_seen_at);
`,
  },
]
