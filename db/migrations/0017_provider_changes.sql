-- scimflow schema, version 17: directory changes wait for each provider in PostgreSQL, where its push activity takes
-- them (issue #16). Until now the relay handed every batch to the provider workflow as a Temporal signal; a signal
-- that met the workflow's continue-as-new failed that workflow task and held every later change for a whole replay.
-- One row per provider and object (the latest change wins): `taken_by` is the incremental run pushing it, reset when
-- the object changes again; a row is deleted once the run that took it has ended.
CREATE TABLE provider_changes (
  provider_id uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
  object_type text NOT NULL CHECK (object_type IN ('user', 'group')),
  object_id   uuid NOT NULL,
  taken_by    uuid,
  queued_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider_id, object_type, object_id)
);
-- The rows a push took, found when it ends.
CREATE INDEX provider_changes_taken_idx ON provider_changes (taken_by) WHERE taken_by IS NOT NULL;

-- Objects each worker process examined for a run (a full sync spreads over every worker of its task queue), keyed by
-- the worker's identity (pid@host, as Temporal names it).
ALTER TABLE sync_runs ADD COLUMN workers jsonb NOT NULL DEFAULT '{}'::jsonb;
