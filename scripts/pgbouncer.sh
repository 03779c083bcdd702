#!/usr/bin/env bash
# A session-mode PgBouncer in front of PostgreSQL, for NEXUS on workerd (docs/RUNTIMES.md): workerd makes a
# database connection per request, and a PostgreSQL connection is a new server process (about 30 ms of CPU
# on the project's machines); PgBouncer hands each one an already started server connection instead.
#
#   scripts/pgbouncer.sh start [DIR]   # writes DIR/pgbouncer.ini, starts PgBouncer, prints its URL
#   scripts/pgbouncer.sh stop [DIR]
#
# Environment: PGBOUNCER_PORT (6432), PG_HOST (127.0.0.1), PG_PORT (5432), PG_USER (root), PG_DATABASE
# (test), PGBOUNCER_POOL_SIZE (50). auth_type is `any`: for a trusted loopback test or dev setup only; in
# production configure PgBouncer's own auth (auth_file or auth_query).
set -euo pipefail

cmd=${1:-}
dir=${2:-${TMPDIR:-/tmp}/nexus-pgbouncer}
port=${PGBOUNCER_PORT:-6432}

case "$cmd" in
  start)
    command -v pgbouncer >/dev/null || { echo "pgbouncer is not installed (apt-get install -y --no-install-recommends pgbouncer)" >&2; exit 1; }
    mkdir -p "$dir"
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=${PG_HOST:-127.0.0.1} port=${PG_PORT:-5432} user=${PG_USER:-root}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = any
; session mode: a client keeps its server connection until it disconnects, and DISCARD ALL resets it
; for the next. On workerd a client is one request, so a long-poll claim or a live event stream holds a
; server connection while it waits, as it would straight to PostgreSQL: size the pool for them.
; Transaction mode was tried and hangs: PgBouncer 1.18 gives the server back at a query's end while
; postgres.js has the next query's Parse/Describe/Flush in flight ("got packet from server when not
; linked"), and postgres.js's max_pipeline=0, which would stop that, breaks its sql.begin.
pool_mode = session
server_reset_query = DISCARD ALL
default_pool_size = ${PGBOUNCER_POOL_SIZE:-50}
; Idle server connections go after 10 s, so the pool does not sit on PostgreSQL's max_connections.
server_idle_timeout = 10
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    if [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
      echo "pgbouncer already running (pid $(cat "$dir/pgbouncer.pid"))" >&2
    else
      # PgBouncer refuses to run as root: drop to the postgres user when started as root.
      if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres "$dir"
        pgbouncer -d -u postgres "$dir/pgbouncer.ini"
      else
        pgbouncer -d "$dir/pgbouncer.ini"
      fi
    fi
    url="postgres://${PG_USER:-root}@127.0.0.1:$port/${PG_DATABASE:-test}"
    for _ in $(seq 1 50); do
      if pg_isready -h 127.0.0.1 -p "$port" -q 2>/dev/null; then
        echo "$url"
        exit 0
      fi
      sleep 0.2
    done
    echo "pgbouncer did not start; its log:" >&2
    cat "$dir/pgbouncer.log" >&2 || true
    exit 1
    ;;
  stop)
    if [ -f "$dir/pgbouncer.pid" ]; then
      kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
      rm -f "$dir/pgbouncer.pid"
    fi
    ;;
  *)
    echo "usage: $0 start|stop [DIR]" >&2
    exit 2
    ;;
esac
