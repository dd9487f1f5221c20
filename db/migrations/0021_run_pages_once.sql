-- A page of directory rows is counted once per run even when two attempts of a range activity both record it: one
-- that timed out but was still running (its worker's event loop held up past the heartbeat timeout) and its retry,
-- which had read the pages counted so far before the first recorded this one. The second record adds nothing to the
-- run's counters (recordBatch). Pages are deleted when their run ends, so few rows can be here; of any twins, one stays.
DELETE FROM sync_run_pages p
 USING sync_run_pages q
 WHERE p.run_id = q.run_id AND p.object_type = q.object_type AND p.first_id = q.first_id AND p.ctid > q.ctid;
CREATE UNIQUE INDEX sync_run_pages_once ON sync_run_pages (run_id, object_type, first_id);
