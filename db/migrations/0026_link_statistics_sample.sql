-- scimflow schema, version 26: ANALYZE of provider_links samples 6,000 rows instead of 30,000.
-- PostgreSQL samples 300 rows per unit of the largest statistics target among a table's columns (100 by default).
-- The sync renews these statistics whenever a tenth of the table has changed (db/statistics.ts), so a first sync
-- of 100,000 users analyses the table about eight times while it sends; each took 0.3-0.5 s of a core, on the two
-- cores the sync's requests share, and the requests at a target 20 ms away fell from 57 in flight to 14-40 for that
-- long (scale bench, 30,000 users). At 200,000 links an ANALYZE took 116-140 ms with the default target and 16-18
-- with 20. What the plans read of these columns stays: which providers hold most links, how the object types and
-- statuses divide them, and that local and remote ids are unique.
ALTER TABLE provider_links
  ALTER COLUMN provider_id SET STATISTICS 20,
  ALTER COLUMN object_type SET STATISTICS 20,
  ALTER COLUMN local_id SET STATISTICS 20,
  ALTER COLUMN remote_id SET STATISTICS 20,
  ALTER COLUMN status SET STATISTICS 20;
