# Sourced by scripts/test.sh and bench/analyze_postgres.sh: a throw-away PostgreSQL server on a
# free loopback port, in a temporary folder, stopped and removed when the caller exits.
#   start_throwaway_postgres [extra server options...]
# sets PGBASE (the folder), PGPORT (ABGATE_TEST_PGPORT when given) and PGURI, and traps EXIT.

start_throwaway_postgres() {
  PGPORT=${ABGATE_TEST_PGPORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  PGBASE=$(mktemp -d)
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  trap stop_throwaway_postgres EXIT
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PGBASE"; fi
  chmod 700 "$PGBASE"
  as_postgres "$PGBIN/initdb" -D "$PGBASE/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  as_postgres "$PGBIN/pg_ctl" -D "$PGBASE/data" -l "$PGBASE/server.log" -w -t 30 \
    -o "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGBASE -c fsync=off $*" start >/dev/null
  PGURI="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
}

stop_throwaway_postgres() {
  as_postgres "$PGBIN/pg_ctl" -D "$PGBASE/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PGBASE"
}

# PostgreSQL refuses to run as root: as root, its commands run as the postgres user.
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
