-- scimflow schema, version 10: one remote object is linked to at most one directory object per provider, and a
-- provider may adopt existing remote objects on an externalId match only.

-- Links that already share a remote id (two case-variant userNames adopting one remote user) keep it on one link:
-- an `ok` one first, then the one written first. The others forget the remote id (nothing remote is removed for
-- them) and are marked failed with ERR_LINK_CONFLICT, so their objects are looked up again and refused with a clear error.
WITH ranked AS (
  SELECT provider_id, object_type, local_id,
         row_number() OVER (PARTITION BY provider_id, object_type, remote_id
                            ORDER BY (status = 'ok') DESC, synced_at, local_id) AS rank
    FROM provider_links
   WHERE remote_id IS NOT NULL
)
UPDATE provider_links l
   SET remote_id = NULL,
       last_payload_hash = NULL,
       status = 'failed',
       last_error = jsonb_build_object(
         'code', 'ERR_LINK_CONFLICT',
         'message', 'its remote object was also linked to another directory object; that link keeps it',
         'details', jsonb_build_object('remoteId', l.remote_id))
  FROM ranked r
 WHERE r.rank > 1
   AND l.provider_id = r.provider_id AND l.object_type = r.object_type AND l.local_id = r.local_id;

DROP INDEX provider_links_remote_idx;
CREATE UNIQUE INDEX provider_links_remote_key ON provider_links (provider_id, object_type, remote_id);

-- 'externalIdOrName' (the default) adopts a remote object whose externalId, else userName / displayName, matches;
-- 'externalId' only on an externalId match (a name match is then a conflict to resolve, never an adoption).
ALTER TABLE providers ADD COLUMN adopt_by text NOT NULL DEFAULT 'externalIdOrName'
  CHECK (adopt_by IN ('externalIdOrName', 'externalId'));
