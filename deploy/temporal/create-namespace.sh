#!/bin/sh
# One-shot job (temporalio/admin-tools image): waits for the Temporal frontend, creates the namespace scimflow
# uses and registers the search attributes its workflows set. Safe to re-run.
set -eu

address="${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-7d}"
max_attempts=60

attempt=1
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  if [ "$attempt" -ge "$max_attempts" ]; then
    echo "Temporal at $address did not become healthy" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done

if temporal operator namespace describe --namespace "$namespace" --address "$address" >/dev/null 2>&1; then
  echo "namespace $namespace exists"
else
  temporal operator namespace create --namespace "$namespace" --retention "$retention" --address "$address"
  echo "namespace $namespace created (retention $retention)"
fi

# Registering an attribute that already exists with the same type succeeds; the namespace cache may need a few
# seconds after creation, so retry.
attempt=1
until temporal operator search-attribute create --namespace "$namespace" --address "$address" \
  --name ScimProvider --type Keyword; do
  if [ "$attempt" -ge "$max_attempts" ]; then
    echo "registering search attribute ScimProvider failed" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done
echo "search attribute ScimProvider (Keyword) registered on $namespace"
