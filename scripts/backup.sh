#!/usr/bin/env bash
# Backs up NEXUS: a pg_dump (custom format) of its schema (NEXUS_DB_SCHEMA, default nexus_core: users,
# sealed signing keys, agents, commands, events, gateway keys...), plus the key-encryption key file
# <NEXUS_DATA_DIR>/auth/kek when the deployment keeps one, and a checksummed manifest.
#
#   DATABASE_URL=postgres://user:pass@host:5432/db scripts/backup.sh [DIR]
#
# DIR defaults to ./backups/nexus-<UTC timestamp>. Exits non-zero on any failure (for cron).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/pg-env.sh
source "$here/pg-env.sh"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
if [[ -z ${DATABASE_URL:-} ]]; then
  echo "backup: set DATABASE_URL (the database NEXUS uses)" >&2
  exit 2
fi
schema=${NEXUS_DB_SCHEMA:-nexus_core}
if [[ ! $schema =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
  echo "backup: NEXUS_DB_SCHEMA must be a lower-case SQL identifier" >&2
  exit 2
fi
data_dir=${NEXUS_DATA_DIR:-./data}
out=${1:-./backups/nexus-$(date -u +%Y%m%dT%H%M%SZ)}

pg_env_from_url "$DATABASE_URL" || { echo "backup: DATABASE_URL is not a postgres:// URL" >&2; exit 2; }
[[ -n ${PGDATABASE:-} ]] || { echo "backup: DATABASE_URL names no database" >&2; exit 2; }
for tool in pg_dump psql sha256sum; do
  command -v "$tool" >/dev/null || { echo "backup: $tool is not installed (Debian: apt-get install postgresql-client)" >&2; exit 2; }
done

# The backup holds password hashes and sealed keys: readable by its owner only.
umask 077
mkdir -p "$out"
if [[ -n $(ls -A "$out") ]]; then
  echo "backup: $out is not empty" >&2
  exit 2
fi

exists=$(psql -XAtq -v ON_ERROR_STOP=1 -c "select count(*) from pg_namespace where nspname = '$schema'")
if [[ $exists != 1 ]]; then
  echo "backup: schema $schema does not exist in that database" >&2
  exit 1
fi

# A consistent snapshot of the schema (pg_dump runs in one repeatable-read transaction).
pg_dump --format=custom --compress=6 --schema="$schema" --no-owner --no-privileges --file="$out/$schema.dump"
migrations=$(psql -XAtq -v ON_ERROR_STOP=1 -c "select coalesce(string_agg(version::text, ',' order by version), '') from \"$schema\".schema_migrations")

kek="$data_dir/auth/kek"
kek_note="not in this backup: keep NEXUS_KEY_ENCRYPTION_KEY (or NEXUS_MASTER_KEY) safe; the signing keys cannot sign again without it"
if [[ -f $kek ]]; then
  cp "$kek" "$out/kek"
  chmod 600 "$out/kek"
  kek_note="kek: the key-encryption key file from $kek (store this backup as carefully as the key itself)"
fi

{
  echo "nexus-backup 1"
  echo "created $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "schema $schema"
  echo "migrations $migrations"
  echo "pg_dump $(pg_dump --version | awk '{print $NF}')"
  echo "key-encryption-key $kek_note"
} >"$out/MANIFEST"
files=("$schema.dump" MANIFEST)
[[ -f $out/kek ]] && files+=(kek)
(cd "$out" && sha256sum -- "${files[@]}" >SHA256SUMS)

echo "backup: $out ($(du -sh "$out" | cut -f1)), schema $schema, migrations $migrations"
if [[ ! -f $out/kek ]]; then
  echo "backup: the key-encryption key is $kek_note" >&2
fi
