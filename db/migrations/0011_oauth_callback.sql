-- scimflow schema, version 11: the interactive OAuth callback. An authorisation in progress remembers which admin
-- API token started it (the callback is refused once that token is revoked, expired or no longer admin), and the
-- callback's query (its authorization code, sealed by the API) until a worker, the only process that holds the client
-- secret, exchanges it.

ALTER TABLE provider_oauth_grants
  ADD COLUMN pending_started_by uuid REFERENCES api_tokens (id) ON DELETE SET NULL,
  ADD COLUMN pending_callback   bytea;

-- The callback finds its authorisation by the hash of `state` alone (the browser brings nothing else).
CREATE UNIQUE INDEX provider_oauth_grants_pending_state_idx ON provider_oauth_grants (pending_state_hash)
  WHERE pending_state_hash IS NOT NULL;
