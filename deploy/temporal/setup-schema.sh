#!/bin/sh
# One-shot job (temporalio/admin-tools image): creates Temporal's two PostgreSQL databases if missing and brings
# their schemas to the version this admin-tools release ships. Safe to re-run: `create` ignores an existing
# database, `setup-schema -v 0.0` skips a database already past 0.0, `update-schema` applies only newer versions.
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS (database host) is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
port="${DB_PORT:-5432}"
schema_root=/etc/temporal/schema/postgresql/v12

attempt=1
until nc -z -w 5 "$POSTGRES_SEEDS" "$port"; do
  if [ "$attempt" -ge 30 ]; then
    echo "PostgreSQL at $POSTGRES_SEEDS:$port is not reachable" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
  database="${pair%%:*}"
  schema_dir="$schema_root/${pair#*:}/versioned"
  echo "schema: $database"
  sql --db "$database" create
  sql --db "$database" setup-schema -v 0.0
  sql --db "$database" update-schema -d "$schema_dir"
done
echo "schema: done"
