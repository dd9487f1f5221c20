-- scimflow schema, version 6: the shared rate budget of each target, and each provider's configured limit.
-- Every worker process paces its requests to a target through one row here (keyed by the target's origin, so two
-- providers on one target share it), taking tokens a few at a time; concurrency slots are leased with an expiry,
-- so the slots of a worker that dies come back on their own.

-- The most requests per second (and optionally in flight) a provider's target takes: {"requestsPerSecond": n,
-- "concurrency": n}, or NULL for no budget (requests are then bounded by the provider's concurrency only).
ALTER TABLE providers ADD COLUMN rate_limit jsonb;

CREATE TABLE rate_budgets (
  -- The target's origin: scheme, host and port of the provider's base URL.
  target text PRIMARY KEY,
  -- Requests per second allowed now (learned: cut on 429, recovered with time); NULL until first used.
  rate double precision,
  tokens double precision NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- No tokens are handed out before this: a Retry-After the target asked for.
  paused_until timestamptz NOT NULL DEFAULT 'epoch',
  cut_at timestamptz NOT NULL DEFAULT 'epoch'
);

CREATE TABLE rate_budget_leases (
  target text NOT NULL REFERENCES rate_budgets (target) ON DELETE CASCADE,
  -- One worker process's budget for this target.
  holder text NOT NULL,
  -- Concurrency slots held, and how many the holder would use now (its share is computed from everyone's wants).
  slots integer NOT NULL CHECK (slots >= 0),
  wanted integer NOT NULL CHECK (wanted >= 0),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (target, holder)
);
