-- scimflow schema, version 1: directory, providers, link memory, runs and the outbox.

CREATE TABLE users (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  username     text NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 256),
  display_name text,
  email        text,
  given_name   text,
  family_name  text,
  active       boolean NOT NULL DEFAULT true,
  kind         text NOT NULL DEFAULT 'internal' CHECK (kind IN ('internal', 'service_account')),
  attributes   jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE groups (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 256),
  attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
  parent_id  uuid REFERENCES groups (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
  group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id);

CREATE TABLE providers (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name           text NOT NULL,
  base_url       text NOT NULL,
  plugin         text NOT NULL DEFAULT 'scim2',
  -- auth_mode 'bearer': auth_secret is the AES-256-GCM ciphertext of the token (never returned by the API).
  auth_mode      text NOT NULL DEFAULT 'bearer' CHECK (auth_mode IN ('bearer', 'oauth_client_credentials', 'none')),
  auth_secret    bytea,
  auth_options   jsonb NOT NULL DEFAULT '{}'::jsonb,
  scope          jsonb NOT NULL DEFAULT '{}'::jsonb,
  options        jsonb NOT NULL DEFAULT '{}'::jsonb,
  deprovision    text NOT NULL DEFAULT 'delete' CHECK (deprovision IN ('delete', 'deactivate', 'leave')),
  page_size      integer NOT NULL DEFAULT 100 CHECK (page_size BETWEEN 1 AND 1000),
  concurrency    integer NOT NULL DEFAULT 4 CHECK (concurrency BETWEEN 1 AND 64),
  dry_run        boolean NOT NULL DEFAULT false,
  enabled        boolean NOT NULL DEFAULT true,
  config_version integer NOT NULL DEFAULT 1,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- What scimflow last pushed for each (provider, object): makes no-change syncs free and creates idempotent.
CREATE TABLE provider_links (
  provider_id       uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
  object_type       text NOT NULL CHECK (object_type IN ('user', 'group')),
  local_id          uuid NOT NULL,
  remote_id         text,
  last_payload_hash text,
  last_payload      jsonb,
  status            text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'failed', 'skipped', 'deactivated')),
  last_error        jsonb,
  synced_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider_id, object_type, local_id)
);
CREATE INDEX provider_links_remote_idx ON provider_links (provider_id, object_type, remote_id);

CREATE TABLE sync_runs (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  provider_id uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
  kind        text NOT NULL CHECK (kind IN ('full', 'incremental')),
  status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
  workflow_id text,
  total       integer NOT NULL DEFAULT 0,
  processed   integer NOT NULL DEFAULT 0,
  created     integer NOT NULL DEFAULT 0,
  updated     integer NOT NULL DEFAULT 0,
  deleted     integer NOT NULL DEFAULT 0,
  unchanged   integer NOT NULL DEFAULT 0,
  skipped     integer NOT NULL DEFAULT 0,
  failed      integer NOT NULL DEFAULT 0,
  error       jsonb,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX sync_runs_provider_idx ON sync_runs (provider_id, started_at DESC);

-- The provisioning log: one row per object action a run took (or failed to take).
CREATE TABLE sync_events (
  id          bigserial PRIMARY KEY,
  run_id      uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
  object_type text NOT NULL,
  local_id    uuid NOT NULL,
  action      text NOT NULL CHECK (action IN ('create', 'adopt', 'update', 'delete', 'deactivate', 'skip', 'fail')),
  detail      jsonb,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_events_run_idx ON sync_events (run_id, id);

-- Transactional outbox: every directory write appends here in the same transaction.
CREATE TABLE outbox (
  seq           bigserial PRIMARY KEY,
  object_type   text NOT NULL CHECK (object_type IN ('user', 'group', 'membership')),
  object_id     uuid NOT NULL,
  related_id    uuid,
  change        text NOT NULL CHECK (change IN ('created', 'updated', 'deleted', 'member_added', 'member_removed')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  dispatched_at timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (seq) WHERE dispatched_at IS NULL;
