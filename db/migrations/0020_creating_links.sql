-- A create is recorded before it is sent: `creating`, with the payload sent, until its answer gives the remote id.
-- A link left `creating` (the answer was lost: a reset after the target wrote, a crash, a cancellation) tells the
-- next sync that the target may hold the object, so it is looked up by its externalId before anything else.
ALTER TABLE provider_links DROP CONSTRAINT provider_links_status_check;
ALTER TABLE provider_links ADD CONSTRAINT provider_links_status_check
  CHECK (status IN ('ok', 'failed', 'skipped', 'deactivated', 'retrying', 'creating'));
