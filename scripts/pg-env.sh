#!/usr/bin/env bash
# Sourced by backup.sh and restore.sh: turns a postgres:// URL into libpq's PG* variables, so that the
# password never appears in a process's arguments (visible to every user through ps).

# Decodes %XX escapes (URL userinfo and path components).
pg_url_decode() {
  local s=${1//+/ }
  printf '%b' "${s//%/\\x}"
}

# pg_env_from_url URL: exports PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE and, from the query string,
# PGSSLMODE / PGSSLROOTCERT / PGAPPNAME. Fails on anything that is not a postgres:// or postgresql:// URL.
pg_env_from_url() {
  local url=$1 rest auth hostport path query
  if [[ ! $url =~ ^postgres(ql)?:// ]]; then
    echo "not a postgres:// URL" >&2
    return 1
  fi
  rest=${url#*://}
  query=""
  if [[ $rest == *\?* ]]; then
    query=${rest#*\?}
    rest=${rest%%\?*}
  fi
  path=""
  if [[ $rest == */* ]]; then
    path=${rest#*/}
    rest=${rest%%/*}
  fi
  auth=""
  if [[ $rest == *@* ]]; then
    auth=${rest%@*}
    rest=${rest##*@}
  fi
  hostport=$rest
  if [[ -n $auth ]]; then
    if [[ $auth == *:* ]]; then
      export PGUSER; PGUSER=$(pg_url_decode "${auth%%:*}")
      export PGPASSWORD; PGPASSWORD=$(pg_url_decode "${auth#*:}")
    else
      export PGUSER; PGUSER=$(pg_url_decode "$auth")
    fi
  fi
  if [[ $hostport =~ ^\[(.*)\](:([0-9]+))?$ ]]; then
    export PGHOST=${BASH_REMATCH[1]}
    [[ -n ${BASH_REMATCH[3]} ]] && export PGPORT=${BASH_REMATCH[3]}
  elif [[ $hostport == *:* ]]; then
    export PGHOST=${hostport%%:*} PGPORT=${hostport##*:}
  elif [[ -n $hostport ]]; then
    export PGHOST=$hostport
  fi
  [[ -n $path ]] && { export PGDATABASE; PGDATABASE=$(pg_url_decode "$path"); }
  local pair key value
  local -a pairs
  IFS='&' read -r -a pairs <<<"$query"
  for pair in "${pairs[@]}"; do
    key=${pair%%=*}
    value=$(pg_url_decode "${pair#*=}")
    case $key in
      sslmode) export PGSSLMODE=$value ;;
      sslrootcert) export PGSSLROOTCERT=$value ;;
      application_name) export PGAPPNAME=$value ;;
    esac
  done
  return 0
}
