-- scimflow schema, version 3: each provider's full-sync interval and deletion limit, and the outbox wake-up
-- trigger (until now installed by the relay at startup, which needed the relay's role to own the table).

ALTER TABLE providers
  ADD COLUMN full_sync_interval_minutes integer NOT NULL DEFAULT 60
    CHECK (full_sync_interval_minutes BETWEEN 1 AND 10080),
  -- Most objects a sync may delete or deactivate on the target before it stops and asks; NULL: no limit.
  ADD COLUMN deletion_limit integer DEFAULT 500 CHECK (deletion_limit >= 0);

-- A hint only: the relay also polls, so a lost notification costs latency, never an event.
CREATE OR REPLACE FUNCTION scimflow_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('scimflow_outbox', '');
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION scimflow_outbox_notify();
