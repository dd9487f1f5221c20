-- scimflow schema, version 22: the index that keeps one link per remote object leads with the remote id.
-- Led by (provider_id, object_type), it could serve any probe of one link by its primary key, by walking every link
-- of the provider and filtering on local_id; and when the planner statistics say a provider has few links (taken
-- before its first sync wrote them), it costs the same as the primary key and was picked: 24 s for one stretch of
-- 1,000 users at 100,000 links, where the primary key answers in a few milliseconds. Led by remote_id, it serves only
-- what it is for (which link holds this remote id), and every probe by local id has the primary key alone.
CREATE UNIQUE INDEX provider_links_remote_key_by_id ON provider_links (remote_id, provider_id, object_type);
DROP INDEX provider_links_remote_key;
ALTER INDEX provider_links_remote_key_by_id RENAME TO provider_links_remote_key;
