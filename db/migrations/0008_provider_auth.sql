-- scimflow schema, version 8: every provider auth mode (static bearer / basic, OAuth client credentials, interactive
-- OAuth), and the grants interactive providers hold. auth_options keeps a mode's public settings (header name,
-- issuer, client id, scope, …); auth_secret keeps its secret fields, sealed, as one JSON object.

ALTER TABLE providers DROP CONSTRAINT IF EXISTS providers_auth_mode_check;
ALTER TABLE providers ADD CONSTRAINT providers_auth_mode_check
  CHECK (auth_mode IN ('none', 'bearer', 'basic', 'oauth_client_credentials', 'oauth_interactive'));

-- One row per interactive provider: its refresh token (sealed), whether it still works, and an authorisation in
-- progress (the hash of its `state` and its sealed PKCE verifier), which a callback must match within ten minutes.
CREATE TABLE provider_oauth_grants (
  provider_id        uuid PRIMARY KEY REFERENCES providers (id) ON DELETE CASCADE,
  status             text NOT NULL DEFAULT 'not_authorised'
                       CHECK (status IN ('not_authorised', 'authorised', 'needs_reauthorisation')),
  refresh_token      bytea,
  authorised_at      timestamptz,
  expires_at         timestamptz,
  error              text,
  pending_state_hash text,
  pending_verifier   bytea,
  pending_created_at timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now()
);
