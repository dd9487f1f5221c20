-- Objects whose transient failures (429, 5xx, resets, timeouts) outlasted their retry budget are `retrying`, not
-- failed: the next push or full sync sends them again. Runs count them apart from permanent failures.
ALTER TABLE provider_links DROP CONSTRAINT provider_links_status_check;
ALTER TABLE provider_links ADD CONSTRAINT provider_links_status_check
  CHECK (status IN ('ok', 'failed', 'skipped', 'deactivated', 'retrying'));
ALTER TABLE sync_events DROP CONSTRAINT sync_events_action_check;
ALTER TABLE sync_events ADD CONSTRAINT sync_events_action_check
  CHECK (action IN ('create', 'adopt', 'update', 'delete', 'deactivate', 'skip', 'fail', 'retry'));
ALTER TABLE sync_runs ADD COLUMN retrying integer NOT NULL DEFAULT 0;
