-- A full sync asked for while another runs waits for it as `queued`: its run exists (the request is answered with its
-- id at once) and turns `running`, started now, once it begins.
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_status_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
