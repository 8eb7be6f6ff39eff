#!/usr/bin/env bash
# Registry benchmark: requests/s of `abgate registry` for the two calls on the serving and
# tracking paths — GET registered-models/alias (how a gateway or `mlflow.pyfunc.load_model`
# resolves models:/name@champion) and POST runs/log-batch (10 metrics + 1 tag per call, each
# appended to the SQLite history and committed). The anchor is nginx serving the identical alias
# reply as a static file: the ceiling of an HTTP server on this machine, not of MLflow (which
# Debian does not package; its Flask/gunicorn server is far below either). wrk on loopback,
# bounded by DURATION seconds per run.
# Usage: bench/registry_bench.sh [DURATION_S=10] [CONNECTIONS=32]
set -euo pipefail
DURATION=${1:-10}
CONNS=${2:-32}
source "$(dirname "$0")/common.sh"
chmod 755 "$WORK"  # nginx workers (www-data when started as root) read the static reply
NGX=19280

ABGATE_LOG_LEVEL=warning "$ROOT/build/abgate" registry --store "sqlite:$WORK/registry.db" --artifacts "$WORK/artifacts" \
  --port 0 > "$WORK/reg.out" 2> "$WORK/reg.err" &
PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$WORK/reg.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/.*listening \(http:[^ ]*\).*/\1/p' "$WORK/reg.out")
API="$URL/api/2.0/mlflow"
post() { curl -sf -X POST "$API/$1" -H 'Content-Type: application/json' -d "$2"; }
post registered-models/create '{"name":"hyatt_booking_model"}' >/dev/null
for v in 1 2 3 4 5 6 7 8; do post model-versions/create '{"name":"hyatt_booking_model","source":"mlflow-artifacts:/1/x/artifacts/model"}' >/dev/null; done
post registered-models/alias '{"name":"hyatt_booking_model","alias":"champion","version":"7"}' >/dev/null
RUN_ID=$(post runs/create '{"experiment_id":"0","run_name":"bench"}' | sed -n 's/.*"run_id":"\([0-9a-f]*\)".*/\1/p')
curl -sf "$API/registered-models/alias?name=hyatt_booking_model&alias=champion" > "$WORK/alias.json"

mkdir -p "$WORK/www/api/2.0/mlflow/registered-models"
cp "$WORK/alias.json" "$WORK/www/api/2.0/mlflow/registered-models/alias"
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 2;
pid $WORK/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/cb;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$NGX backlog=4096; root $WORK/www; default_type application/json; }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx-error.log"

cat > "$WORK/log_batch.lua" <<LUA
local step = 0
request = function()
  step = step + 1
  local metrics = {}
  for i = 1, 10 do
    metrics[i] = string.format('{"key":"m%d","value":%d.5,"timestamp":1795690821663,"step":%d}', i, step, step)
  end
  local body = '{"run_id":"$RUN_ID","metrics":[' .. table.concat(metrics, ",") .. '],"tags":[{"key":"t","value":"' .. step .. '"}]}'
  return wrk.format("POST", "/api/2.0/mlflow/runs/log-batch", {["Content-Type"] = "application/json"}, body)
end
LUA

run() {  # run URL [script] → "rps p99 non2xx"
  local out
  if [ -n "${2:-}" ]; then
    out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$2" "$1" 2>&1)
  else
    out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$1" 2>&1)
  fi
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/Non-2xx/ {print $NF}' <<<"$out")"
}
ALIAS_PATH="/api/2.0/mlflow/registered-models/alias?name=hyatt_booking_model&alias=champion"
wrk -t2 -c"$CONNS" -d2s "$URL$ALIAS_PATH" >/dev/null
read -r N_RPS N_P99 N_BAD <<<"$(run "http://127.0.0.1:$NGX$ALIAS_PATH")"
read -r A_RPS A_P99 A_BAD <<<"$(run "$URL$ALIAS_PATH")"
read -r L_RPS L_P99 L_BAD <<<"$(run "$URL/api/2.0/mlflow/runs/log-batch" "$WORK/log_batch.lua")"
ROWS=$(curl -sf "$API/metrics/get-history?run_id=$RUN_ID&metric_key=m1" | grep -o '"step"' | wc -l)

echo
echo "registry benchmark: wrk -t2 -c$CONNS -d${DURATION}s on 127.0.0.1, $(nproc) cores"
printf '%-44s %12s %10s %8s\n' "" "req/s" "p99" "non-2xx"
printf '%-44s %12s %10s %8s\n' "nginx static alias reply (ceiling)" "$N_RPS" "$N_P99" "${N_BAD:-0}"
printf '%-44s %12s %10s %8s\n' "abgate GET registered-models/alias" "$A_RPS" "$A_P99" "${A_BAD:-0}"
printf '%-44s %12s %10s %8s\n' "abgate POST runs/log-batch (10 metrics+1 tag)" "$L_RPS" "$L_P99" "${L_BAD:-0}"
awk -v a="$A_RPS" -v n="$N_RPS" 'BEGIN { printf "alias lookups: %.2fx the nginx static ceiling\n", a / n }'
awk -v l="$L_RPS" 'BEGIN { printf "log-batch: %.0f metric rows/s committed (SQLite WAL)\n", l * 10 }'
echo "metric history rows for m1 after the run: $ROWS"
