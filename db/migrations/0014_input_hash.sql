-- What an object's last push was made from: a hash of its directory row (and, for groups, its members' remote ids),
-- the provider's mapping set version and its config version. A full sync that finds the same hash on an ok link
-- skips the object without mapping it; any change to one of those inputs changes the hash.
ALTER TABLE provider_links ADD COLUMN input_hash text;
