-- scimflow schema, version 5: admin API tokens, the audit log, and a keyed fingerprint of each provider secret
-- (so the API can tell whether a re-sent token is the stored one without decrypting it).

CREATE TABLE api_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name         text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}$'),
  -- The token's first characters (`sfa_` and 8 more), shown in listings and logs; never enough to use it.
  prefix       text NOT NULL,
  -- SHA-256 of the whole token; the token itself is shown once, on creation, and never stored.
  token_hash   bytea NOT NULL UNIQUE,
  role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text NOT NULL,
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz
);
-- A name is unique among live tokens; a revoked token keeps its name for the audit log, and the name can be reused.
CREATE UNIQUE INDEX api_tokens_live_name_idx ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT now(),
  -- The token name (or `local:<user>` for the tokens commands run against the database).
  actor          text NOT NULL,
  -- The socket peer of the request; NULL for changes made directly against the database.
  remote_address text,
  -- `provider.create`, `provider.update`, `token.revoke`, `sync.start`, ...
  action         text NOT NULL,
  target_type    text NOT NULL,
  target_id      text,
  target_name    text,
  -- What changed (field names, never secret values).
  details        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- HMAC-SHA256 of the provider secret under a key derived from SCIMFLOW_SECRET_KEY; NULL when none is set or it
-- was stored before this version (then the next token sent is taken as a change).
ALTER TABLE providers ADD COLUMN auth_fingerprint bytea;
