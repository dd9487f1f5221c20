-- scimflow schema, version 11b (issue 14, in the 0011 slot of this change so it cannot collide with another
-- change's number): a provider's base URL must be https unless the provider is explicitly allowed plain http
-- (loopback hosts never need it: nothing crosses the network).

ALTER TABLE providers ADD COLUMN allow_insecure_http boolean NOT NULL DEFAULT false;
