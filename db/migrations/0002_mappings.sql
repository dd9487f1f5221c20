-- scimflow schema, version 2: mappings (JavaScript function bodies run in the isolated-vm sandbox), which
-- provider uses which, and per-provider sandbox limits.

CREATE TABLE mappings (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
  object_type text NOT NULL CHECK (object_type IN ('user', 'group')),
  expression  text NOT NULL CHECK (length(expression) <= 65536),
  -- Bumped on every edit; a provider's mapping set version is derived from its mappings' (id, version).
  version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
  builtin     boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A provider's mappings apply in name order (the sandbox sorts them), so this table carries no position.
CREATE TABLE provider_mappings (
  provider_id uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
  mapping_id  uuid NOT NULL REFERENCES mappings (id) ON DELETE CASCADE,
  PRIMARY KEY (provider_id, mapping_id)
);
CREATE INDEX provider_mappings_mapping_idx ON provider_mappings (mapping_id);

-- Partial MappingLimits (memoryMb, objectTimeoutMs, batchTimeoutMs, maxOutputBytes); unset keys use the defaults.
ALTER TABLE providers ADD COLUMN mapping_limits jsonb NOT NULL DEFAULT '{}'::jsonb;

-- The built-in defaults as editable rows; the text must stay identical to sandbox/defaults.ts (a test checks it).
INSERT INTO mappings (name, object_type, expression, builtin) VALUES
  ('default-user-account', 'user', $mapping$return {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  externalId: user.uid,
  userName: user.username,
  active: user.active,
};$mapping$, true),
  ('default-user-emails', 'user', $mapping$if (!user.email) return null;
return { emails: [{ value: user.email, type: 'work', primary: true }] };$mapping$, true),
  ('default-user-name', 'user', $mapping$const name = { formatted: user.displayName ?? user.username };
if (user.givenName) name.givenName = user.givenName;
if (user.familyName) name.familyName = user.familyName;
return { name, displayName: user.displayName ?? user.username };$mapping$, true),
  ('default-group', 'group', $mapping$return {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
  externalId: group.uid,
  displayName: group.name,
};$mapping$, true);

-- Providers that exist already keep sending exactly what they sent before: they get the built-in mappings.
INSERT INTO provider_mappings (provider_id, mapping_id)
SELECT p.id, m.id FROM providers p CROSS JOIN mappings m WHERE m.builtin;
