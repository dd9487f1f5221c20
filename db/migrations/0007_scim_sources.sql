-- Inbound SCIM sources (issue 15): other identity providers push users and groups into the directory.

CREATE TABLE scim_sources (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug               text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 256),
  -- SHA-256 of the bearer token (hex); the token itself is shown once and never stored.
  token_hash         text NOT NULL,
  -- The first characters of the token, so a person can tell which token a client holds.
  token_prefix       text NOT NULL,
  -- The directory service account whose token this is; deleting that account deletes the source.
  service_account_id uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
  -- What a SCIM DELETE of a user does: delete it from the directory, or set it inactive.
  delete_policy      text NOT NULL DEFAULT 'delete' CHECK (delete_policy IN ('delete', 'deactivate')),
  -- When true the source may also see and change objects no source owns (made through the admin API); the first
  -- write through the source takes ownership of them.
  claim              boolean NOT NULL DEFAULT false,
  created_at         timestamptz NOT NULL DEFAULT now(),
  token_rotated_at   timestamptz NOT NULL DEFAULT now()
);

-- Ownership: which source created (or claimed) a directory object. A source sees and changes only what it owns.
-- When the source is deleted the objects stay in the directory, owned by no source.
CREATE TABLE scim_source_users (
  user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  source_id  uuid NOT NULL REFERENCES scim_sources (id) ON DELETE CASCADE,
  -- Set when the source deleted the user under the 'deactivate' policy: the directory user stays (inactive), the
  -- source sees it no more (RFC 7644 §3.6: 404 after a DELETE), and no other source can claim it.
  deleted_at timestamptz
);
CREATE INDEX scim_source_users_source_idx ON scim_source_users (source_id, user_id);

CREATE TABLE scim_source_groups (
  group_id  uuid PRIMARY KEY REFERENCES groups (id) ON DELETE CASCADE,
  source_id uuid NOT NULL REFERENCES scim_sources (id) ON DELETE CASCADE
);
CREATE INDEX scim_source_groups_source_idx ON scim_source_groups (source_id, group_id);

-- SCIM compares userName and displayName case-insensitively (RFC 7643 caseExact false): `userName eq "x"` and the
-- uniqueness check are index lookups on these.
CREATE INDEX users_username_lower_idx ON users (lower(username));
CREATE INDEX groups_name_lower_idx ON groups (lower(name));
