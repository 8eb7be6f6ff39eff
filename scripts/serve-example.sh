#!/usr/bin/env bash
# Quick start: builds abgate, starts two local model stand-ins (nginx answering MLflow's
# /invocations on 127.0.0.1:9007 for v7 and :9008 for v8) and runs `abgate serve` on
# examples/hyatt.yaml, sends a few requests to show the split, then keeps serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
ROOT=$PWD
WORK=$(mktemp -d)
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/body;
  server { listen 127.0.0.1:9007; location /invocations { default_type application/json; return 200 '{"predictions": [0.31]}'; } }
  server { listen 127.0.0.1:9008; location /invocations { default_type application/json; return 200 '{"predictions": [0.47]}'; } }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx-error.log"
GW_PID=""
cleanup() {
  [ -n "$GW_PID" ] && kill -TERM "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null || true
  [ -f "$WORK/nginx.pid" ] && kill -QUIT "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
export ABGATE_ADMIN_TOKEN=${ABGATE_ADMIN_TOKEN:-change-me}
"$ROOT/build/abgate" serve --config examples/hyatt.yaml &
GW_PID=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/readyz >/dev/null && break; sleep 0.1; done
echo
echo "== 10 users through POST /predict (80% v7, 20% v8 by user_hash):"
for u in alice bob carol dave erin frank grace heidi ivan judy; do
  printf '%-6s ' "$u"
  curl -s http://127.0.0.1:8080/predict -H 'Content-Type: application/json' \
    -d "{\"user_id\":\"$u\",\"dataframe_split\":{\"columns\":[\"lead_time\",\"price\"],\"data\":[[12,180.0]]}}"
  echo
done
echo
echo "== The same assignment offline: build/abgate assign --config examples/hyatt.yaml --experiment hyatt_booking_ab alice bob"
"$ROOT/build/abgate" assign --config examples/hyatt.yaml --experiment hyatt_booking_ab alice bob
cat <<HELP

Gateway on http://127.0.0.1:8080 (admin on :8081, token \$ABGATE_ADMIN_TOKEN=$ABGATE_ADMIN_TOKEN). Try:
  the dashboard: http://127.0.0.1:8081/dashboard#token=$ABGATE_ADMIN_TOKEN
  curl -s http://127.0.0.1:8080/metrics | grep abgate_requests_total
  curl -s -X POST http://127.0.0.1:8081/api/v1/experiments/hyatt_booking_ab/weights \\
       -H "Authorization: Bearer $ABGATE_ADMIN_TOKEN" -d '{"weights": [50, 50]}'
  sqlite3 abgate-events.db 'SELECT arm, count(*) FROM exposures GROUP BY arm'
Ctrl-C stops (the gateway drains and flushes its exposure log).
HELP
wait "$GW_PID"
