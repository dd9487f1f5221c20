-- The members scimflow has sent to each remote group of a provider (remote user ids), for targets that take member
-- changes by PATCH: a group's membership is diffed against these rows in chunks (adds and removes, each chunk one
-- request), so no process holds a whole group's members, and its link's last payload holds no members. A row is
-- written once the request that sent it succeeded, and a group's rows are replaced when it is created or adopted.
CREATE TABLE provider_group_members (
  provider_id uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
  group_id    uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  remote_id   text NOT NULL,
  PRIMARY KEY (provider_id, group_id, remote_id)
);
