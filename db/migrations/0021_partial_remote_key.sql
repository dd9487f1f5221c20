-- scimflow schema, version 21: the unique index on remote ids covers only links that have one. Unique as before (NULLs
-- never collided), and still what a lookup by remote id uses; but a query on a provider's links by local id can no
-- longer pick it. With statistics taken while the provider had no links (a first sync's start), PostgreSQL costed it
-- the same as the primary key for `local_id = ANY(...)` and walked every link of the provider for each page, filtering
-- by local id: 4-10 ms a page at 10,000 links, growing with the provider.
DROP INDEX provider_links_remote_key;
CREATE UNIQUE INDEX provider_links_remote_key ON provider_links (provider_id, object_type, remote_id)
  WHERE remote_id IS NOT NULL;
