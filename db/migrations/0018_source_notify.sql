-- Inbound sources (issue 15), version 2.
-- The API keeps each source's settings and token digest in memory so a SCIM request needs no lookup; any change or
-- deletion of a source (a rotated token, a changed setting, the cascade from deleting its service account) tells
-- every listening API process at once, and they forget what they held for that slug.
CREATE OR REPLACE FUNCTION scimflow_source_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('scimflow_sources', OLD.slug);
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER scim_sources_notify AFTER UPDATE OR DELETE ON scim_sources
  FOR EACH ROW EXECUTE FUNCTION scimflow_source_notify();

-- `externalId eq "…"` (Entra matches on it when configured so) is an index lookup too; externalId is caseExact
-- (RFC 7643 §3.1), so the plain value is indexed. These are the expressions the source's filter translation writes.
CREATE INDEX users_scim_external_id_idx ON users ((attributes -> 'scim' ->> 'externalId'));
CREATE INDEX groups_scim_external_id_idx ON groups ((attributes -> 'scim' ->> 'externalId'));
