-- scimflow schema, version 23: ANALYZE of provider_links leaves out the columns no query filters or joins on.
-- A link's payload (jsonb), hashes, error and time are only ever read back whole, and sampling them was most of the
-- table's ANALYZE: 82 ms instead of 24 at 10,000 links, 771 instead of 120 at 40,000, 637 instead of 181 at
-- 100,000 (links of two providers, payloads made by the default mappings). The sync renews these statistics as it
-- writes its links, and its range reads wait for that (db/statistics.ts, activities/statistics-keeper.ts); PostgreSQL
-- ran them on the cores the sync's requests need. Estimates for these columns fall back to the planner's defaults,
-- which no plan of ours depends on.
ALTER TABLE provider_links
  ALTER COLUMN last_payload SET STATISTICS 0,
  ALTER COLUMN last_payload_hash SET STATISTICS 0,
  ALTER COLUMN last_error SET STATISTICS 0,
  ALTER COLUMN input_hash SET STATISTICS 0,
  ALTER COLUMN synced_at SET STATISTICS 0;
