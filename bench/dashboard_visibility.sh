#!/usr/bin/env bash
# End-to-end dashboard benchmark (issue 15 item 3): on a store of N exposures and N/2 outcomes
# (N users; written through the real sink by build/bench/results_refresh_bench, FILL_ONLY=1),
# the real `abgate serve` with an admin token, model stand-ins (one nginx worker), and
# bench/dashboard_visibility.js measuring the time from a posted outcome to a dashboard refresh
# that shows it, the gateway CPU with 0/1/5 dashboards open, wrk's scoring throughput and p99
# with and without dashboards, and the SQL anchor (sqlite3 CLI / psql) on the same store.
# SQLite, then PostgreSQL (a throw-away server on a free loopback port, scripts/throwaway-postgres.sh).
# Bounded: each phase has a fixed length (see the .js header); loopback only.
# Usage: [BACKENDS="sqlite postgres"] [TRIALS=20] [BUSY_RPS=50] [COST_S=15] [WRK_S=10] [ROUNDS=2]
#        bench/dashboard_visibility.sh [N=1000000]
set -euo pipefail
N=${1:-1000000}
source "$(dirname "$0")/common.sh"
ninja -C build -j2 results_refresh_bench >/dev/null
source scripts/throwaway-postgres.sh
cleanup_all() {
  [ -n "${PGBASE:-}" ] && stop_throwaway_postgres
  bench_cleanup
}
trap cleanup_all EXIT

# Model stand-ins: one nginx worker answering MLflow-shaped predictions on two free ports.
read -r UP_A UP_B < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
cat > "$WORK/upstreams.conf" <<NGINX
worker_processes 1;
pid $WORK/upstreams.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/ub;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP_A; location / { default_type application/json; return 200 '{"predictions": [0.31]}'; } }
  server { listen 127.0.0.1:$UP_B; location / { default_type application/json; return 200 '{"predictions": [0.47]}'; } }
}
NGINX
nginx -c "$WORK/upstreams.conf" -p "$WORK" -e "$WORK/upstreams-error.log"

echo "dashboard_visibility: $(date -u '+%F %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), N=$N"
for backend in ${BACKENDS:-sqlite postgres}; do
  if [ "$backend" = sqlite ]; then
    STORE="sqlite:$WORK/events.db"
  else
    start_throwaway_postgres -c shared_buffers=512MB
    trap cleanup_all EXIT  # start_throwaway_postgres set its own
    STORE=$PGURI
    export PG_POSTMASTER_PID; PG_POSTMASTER_PID=$(head -1 "$PGBASE/data/postmaster.pid")
  fi
  s=$(date +%s.%N)
  USERS=$N FILL_ONLY=1 build/bench/results_refresh_bench "$N" 1 0 "$STORE" >/dev/null
  echo "$backend: $N exposures, $((N / 2)) outcomes, $N users written in $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
  node bench/dashboard_visibility.js "$ROOT/build/abgate" "$STORE" "$UP_A" "$UP_B"
  if [ "$backend" = postgres ]; then stop_throwaway_postgres; PGBASE=; unset PG_POSTMASTER_PID; fi
done
