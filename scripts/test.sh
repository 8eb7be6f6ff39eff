#!/usr/bin/env bash
# Builds and runs the whole test suite (unit, integration, whole-process). Everything it needs
# is installed by scripts/install-deps.sh. Tests start the servers they need on 127.0.0.1
# (gateways and model stand-ins on port 0); this script starts one throw-away PostgreSQL on
# loopback for the tests labelled `postgres` and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
# The third-party MLflow client test's npm packages (pinned by package-lock.json).
(cd tests/npm_client && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# A free loopback port, so two suites on one machine (two clones) do not share a server.
PGPORT=${ABGATE_TEST_PGPORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
PGBASE=$(mktemp -d)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_pg() {
  as_pg "$PGBIN/pg_ctl" -D "$PGBASE/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PGBASE"
}
trap stop_pg EXIT
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PGBASE"; fi
chmod 700 "$PGBASE"
as_pg "$PGBIN/initdb" -D "$PGBASE/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGBASE/data" -l "$PGBASE/server.log" -w -t 30 \
  -o "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGBASE -c fsync=off" start >/dev/null
export ABGATE_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$PGPORT/postgres"

cd build
ctest --output-on-failure -j2 --timeout 300
