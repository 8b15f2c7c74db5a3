# shellcheck shell=bash
# A throw-away PostgreSQL server for the tests, from Debian's packages.
#
# Sourced by scripts/test. Usage:
#   pg_start      installs PostgreSQL when missing (apt-get), starts a private cluster on
#                 127.0.0.1 (port 54329, or the next free one when another run holds it),
#                 exports FERROSTACK_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT
#   pg_stop       stops it and removes its data (safe to call twice; put it in a trap)
#
# The cluster lives in /tmp/ferrostack-test-pg-PORT (owned by the `postgres` user when we
# are root: PostgreSQL refuses to run as root), trusts loopback, and trades durability for
# speed (fsync off). A flock on /tmp/ferrostack-test-pg-PORT.lock marks the port as taken
# by a live run, so two runs on one machine do not stop each other's server, and a cluster
# left behind by an aborted run (lock free, data dir present) is stopped and wiped.
# The cluster Debian's package may create and start for itself (port 5432) is not used.

PG_FIRST_PORT=${FERROSTACK_TEST_PG_PORT:-54329}
PG_BIN=""
PG_PORT=""
PG_DIR=""
PG_LOCK_FD=""

_pg_log() { printf 'postgres: %s\n' "$*" >&2; }

_pg_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else _pg_log "need root (or sudo) to run: $*"; return 1
  fi
}

# Runs a PostgreSQL program as the cluster's owner.
_pg_run() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

_pg_find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

pg_install() {
  if PG_BIN=$(_pg_find_bin); then return 0; fi
  _pg_log "not installed: apt-get install postgresql"
  _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends postgresql >/dev/null
  PG_BIN=$(_pg_find_bin) || { _pg_log "no initdb under /usr/lib/postgresql/*/bin after install"; return 1; }
  if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
}

_pg_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Stops and removes a cluster left in $PG_DIR by an aborted run (we hold its lock).
_pg_clean_leftover() {
  local pid
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    _pg_log "stopping a cluster left over by an aborted run in $PG_DIR"
    _pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
    pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$PG_DIR"
}

pg_start() {
  pg_install
  local port lockfile fd
  for port in $(seq "$PG_FIRST_PORT" $((PG_FIRST_PORT + 9))); do
    lockfile=/tmp/ferrostack-test-pg-$port.lock
    exec {fd}>>"$lockfile"
    if flock -n "$fd"; then
      PG_PORT=$port PG_DIR=/tmp/ferrostack-test-pg-$port PG_LOCK_FD=$fd
      _pg_clean_leftover
      if ! _pg_port_busy "$port"; then break; fi
      _pg_log "port $port is used by something else"
    fi
    exec {fd}>&-
    PG_PORT="" PG_DIR="" PG_LOCK_FD=""
  done
  if [ -z "$PG_PORT" ]; then _pg_log "no free port in $PG_FIRST_PORT..$((PG_FIRST_PORT + 9))"; return 1; fi

  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR"; fi
  # The lock's descriptor is closed for the server, or it would keep the port "taken"
  # after we are gone.
  if ! _pg_run "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C \
      --no-sync >"$PG_DIR/initdb.log" 2>&1 {PG_LOCK_FD}>&-; then
    cat "$PG_DIR/initdb.log" >&2; return 1
  fi
  if ! _pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
      -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null {PG_LOCK_FD}>&-; then
    tail -n 30 "$PG_DIR/server.log" >&2; return 1
  fi
  local version
  version=$(_pg_run "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -XAtc 'show server_version' {PG_LOCK_FD}>&-)
  export FERROSTACK_TEST_POSTGRES=postgres://postgres@127.0.0.1:$PG_PORT
  _pg_log "PostgreSQL $version ready at $FERROSTACK_TEST_POSTGRES (data in $PG_DIR)"
}

pg_stop() {
  if [ -z "$PG_DIR" ]; then return 0; fi
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    _pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      _pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_DIR"
  if [ -n "$PG_LOCK_FD" ]; then exec {PG_LOCK_FD}>&-; fi
  PG_DIR="" PG_PORT="" PG_LOCK_FD=""
}
