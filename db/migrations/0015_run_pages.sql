-- The pages of directory rows a full sync has counted (ids first_id..last_id of one object type), written in the
-- statement that records the page's links, events and counters: a range activity retried after its worker died skips
-- the rows counted already, so a run's `processed` counts each object once. Deleted when the run ends.
CREATE TABLE sync_run_pages (
  run_id      uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
  object_type text NOT NULL CHECK (object_type IN ('user', 'group')),
  first_id    uuid NOT NULL,
  last_id     uuid NOT NULL
);
CREATE INDEX sync_run_pages_run_idx ON sync_run_pages (run_id, object_type, last_id);
