#!/usr/bin/env bash
# Restores a NEXUS backup made by scripts/backup.sh into the database of DATABASE_URL, and the
# key-encryption key file into <NEXUS_DATA_DIR>/auth/kek when the backup has one. Stop NEXUS first.
#
#   DATABASE_URL=postgres://user:pass@host:5432/db scripts/restore.sh DIR [--force]
#
# The schema is the backup's (NEXUS_DB_SCHEMA must match when set). A schema that already exists is
# refused unless --force, which drops it first. Everything is restored in one transaction.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/pg-env.sh
source "$here/pg-env.sh"

dir=""
force=false
for arg in "$@"; do
  case $arg in
    --force) force=true ;;
    -h | --help)
      sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "restore: unknown option $arg" >&2
      exit 2
      ;;
    *) dir=$arg ;;
  esac
done
if [[ -z $dir || ! -f $dir/MANIFEST ]]; then
  echo "restore: give the directory of a backup (it has a MANIFEST)" >&2
  exit 2
fi
if [[ -z ${DATABASE_URL:-} ]]; then
  echo "restore: set DATABASE_URL (the database to restore into)" >&2
  exit 2
fi
pg_env_from_url "$DATABASE_URL" || { echo "restore: DATABASE_URL is not a postgres:// URL" >&2; exit 2; }
# Without a database name pg_restore would print SQL instead of restoring.
[[ -n ${PGDATABASE:-} ]] || { echo "restore: DATABASE_URL names no database" >&2; exit 2; }
for tool in pg_restore psql sha256sum; do
  command -v "$tool" >/dev/null || { echo "restore: $tool is not installed (Debian: apt-get install postgresql-client)" >&2; exit 2; }
done

(cd "$dir" && sha256sum --quiet --check SHA256SUMS) || { echo "restore: $dir fails its checksums" >&2; exit 1; }
schema=$(awk '$1 == "schema" {print $2}' "$dir/MANIFEST")
if [[ ! $schema =~ ^[a-z_][a-z0-9_]{0,62}$ || ! -f $dir/$schema.dump ]]; then
  echo "restore: the MANIFEST names no valid schema dump" >&2
  exit 1
fi
if [[ -n ${NEXUS_DB_SCHEMA:-} && $NEXUS_DB_SCHEMA != "$schema" ]]; then
  echo "restore: the backup is of schema $schema, but NEXUS_DB_SCHEMA is $NEXUS_DB_SCHEMA" >&2
  exit 1
fi

exists=$(psql -XAtq -v ON_ERROR_STOP=1 -c "select count(*) from pg_namespace where nspname = '$schema'")
if [[ $exists == 1 ]]; then
  if [[ $force != true ]]; then
    echo "restore: schema $schema already exists; stop NEXUS and rerun with --force to replace it" >&2
    exit 1
  fi
  psql -XAtq -v ON_ERROR_STOP=1 -c "drop schema \"$schema\" cascade" >/dev/null
fi

pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname="$PGDATABASE" "$dir/$schema.dump"

if [[ -f $dir/kek ]]; then
  data_dir=${NEXUS_DATA_DIR:-./data}
  target="$data_dir/auth/kek"
  if [[ -f $target ]] && ! cmp -s "$dir/kek" "$target"; then
    if [[ $force != true ]]; then
      echo "restore: $target exists and differs from the backup's; rerun with --force to replace it" >&2
      exit 1
    fi
  fi
  mkdir -p "$data_dir/auth"
  chmod 700 "$data_dir/auth"
  (umask 077 && cp "$dir/kek" "$target")
  echo "restore: key-encryption key written to $target"
elif [[ -z ${NEXUS_KEY_ENCRYPTION_KEY:-} && -z ${NEXUS_MASTER_KEY:-} ]]; then
  echo "restore: this backup has no key-encryption key: start NEXUS with the NEXUS_KEY_ENCRYPTION_KEY (or NEXUS_MASTER_KEY) it had" >&2
fi
echo "restore: schema $schema restored from $dir ($(awk '$1 == "migrations" {print $2}' "$dir/MANIFEST"))"
