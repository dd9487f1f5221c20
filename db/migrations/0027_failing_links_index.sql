-- scimflow schema, version 27: the links that wait to be sent again or failed, found without reading the others.
-- A full sync's retry pass asks for its provider's `retrying` links before it ends, and the status API counts the
-- `retrying` and `failed` ones; both read every link of the provider to find none, nearly always (at 100,000 links,
-- the retry pass of a sync that had nothing to retry took 78-192 ms between the sync's last request and its end).
-- Only such links are in this index, so the writes of all others never touch it.
CREATE INDEX provider_links_failing_idx ON provider_links (provider_id, object_type, status, synced_at, local_id)
  WHERE status IN ('retrying', 'failed');
