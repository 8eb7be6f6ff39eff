#!/usr/bin/env bash
# Data-plane benchmark: nginx `split_clients` 80/20 (the anchor) vs abgate (80/20 user_hash,
# exposure logging on), in front of the same fast fake model upstreams (nginx `return 200`),
# in one run, with wrk on loopback. Prints req/s and p50/p99 for both and the ratios, and
# abgate's dropped-exposure count. Bounded: each wrk run lasts DURATION seconds.
# Usage: bench/gateway_vs_nginx.sh [DURATION_S=10] [CONNECTIONS=64]
set -euo pipefail
DURATION=${1:-10}
CONNS=${2:-64}
source "$(dirname "$0")/common.sh"

UP_A=19107; UP_B=19108; NGX=19180; GW=19181; GW_ADMIN=19182

# Fake models: one nginx worker answering MLflow-shaped predictions.
cat > "$WORK/upstreams.conf" <<NGINX
worker_processes 1;
pid $WORK/upstreams.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/ub;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP_A backlog=4096; location / { default_type application/json; return 200 '{"predictions": [0.31]}'; } }
  server { listen 127.0.0.1:$UP_B backlog=4096; location / { default_type application/json; return 200 '{"predictions": [0.47]}'; } }
}
NGINX
# The anchor: nginx split_clients on the same unit, proxying with keep-alive upstreams.
cat > "$WORK/anchor.conf" <<NGINX
worker_processes 2;
pid $WORK/anchor.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/ab;
  keepalive_requests 1000000;
  upstream model_a { server 127.0.0.1:$UP_A; keepalive 256; }
  upstream model_b { server 127.0.0.1:$UP_B; keepalive 256; }
  split_clients "\${http_x_user_id}" \$arm { 80% model_a; * model_b; }
  server {
    listen 127.0.0.1:$NGX backlog=4096;
    location /predict {
      proxy_pass http://\$arm/invocations;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
cat > "$WORK/gateway.yaml" <<YAML
server: {listen: 127.0.0.1:$GW, admin_listen: 127.0.0.1:$GW_ADMIN, threads: 2}
events: {store: "sqlite:$WORK/events.db", flush_ms: 50}
experiments:
  - name: bench
    default: true
    routing_mode: user_hash
    unit: {field: user_id, header: X-User-Id}
    arms:
      - {name: A, version: "7", weight: 80, upstream: "http://127.0.0.1:$UP_A/invocations"}
      - {name: B, version: "8", weight: 20, upstream: "http://127.0.0.1:$UP_B/invocations"}
YAML
cat > "$WORK/predict.lua" <<'LUA'
-- Random users; the unit travels in the body (abgate) and in X-User-Id (nginx split_clients).
local counter = 0
request = function()
  counter = counter + 1
  local uid = "user-" .. math.random(1, 1000000)
  local body = '{"user_id":"' .. uid .. '","dataframe_split":{"columns":["lead_time","price"],"data":[[12,180.5]]}}'
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json", ["X-User-Id"] = uid}, body)
end
LUA

nginx -c "$WORK/upstreams.conf" -p "$WORK" -e "$WORK/upstreams-error.log"
nginx -c "$WORK/anchor.conf" -p "$WORK" -e "$WORK/anchor-error.log"
ABGATE_LOG_LEVEL=warning "$ROOT/build/abgate" serve --config "$WORK/gateway.yaml" > "$WORK/gw.out" 2> "$WORK/gw.err" &
PIDS+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$GW/readyz" >/dev/null && break; sleep 0.1; done

run() {  # run NAME PORT → "rps p50_ms p99_ms errors"
  local out
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/predict.lua" "http://127.0.0.1:$2/predict" 2>&1)
  echo "$out" > "$WORK/$1.wrk"
  local rps p50 p99 errs non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Socket errors/ {print $0}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") ${non2xx:-0} ${errs:+($errs)}"
}
to_ms() {  # wrk prints 812.00us / 1.20ms / 1.01s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

# Warm both (connections, caches), then measure.
wrk -t2 -c"$CONNS" -d2s -s "$WORK/predict.lua" "http://127.0.0.1:$NGX/predict" >/dev/null
wrk -t2 -c"$CONNS" -d2s -s "$WORK/predict.lua" "http://127.0.0.1:$GW/predict" >/dev/null
read -r N_RPS N_P50 N_P99 N_NON2XX N_ERR <<<"$(run nginx $NGX)"
read -r G_RPS G_P50 G_P99 G_NON2XX G_ERR <<<"$(run abgate $GW)"

METRICS=$(curl -s "http://127.0.0.1:$GW/metrics")
DROPPED=$(awk '/^abgate_events_dropped_total/ {print $2}' <<<"$METRICS")
WRITTEN=$(awk '/^abgate_events_written_total/ {print $2}' <<<"$METRICS")
B_SHARE=$(awk '/^abgate_requests_total.*arm="B",status="200"/ {b=$2} /^abgate_requests_total.*status="200"/ {t+=$2} END {if (t) printf "%.3f", b/t}' <<<"$METRICS")

echo
echo "gateway benchmark: wrk -t2 -c$CONNS -d${DURATION}s on 127.0.0.1, $(nproc) cores, upstreams = nginx return 200"
printf '%-28s %12s %10s %10s %8s\n' "" "req/s" "p50 ms" "p99 ms" "non-2xx"
printf '%-28s %12s %10s %10s %8s\n' "nginx split_clients 80/20" "$N_RPS" "$N_P50" "$N_P99" "$N_NON2XX"
printf '%-28s %12s %10s %10s %8s\n' "abgate user_hash 80/20" "$G_RPS" "$G_P50" "$G_P99" "$G_NON2XX"
awk -v g="$G_RPS" -v n="$N_RPS" -v gp="$G_P99" -v np="$N_P99" \
  'BEGIN { printf "ratio abgate/nginx: throughput %.2fx, p99 %.2fx (goal: >= 1.00x throughput, <= 1.00x p99)\n", g/n, gp/np }'
echo "abgate exposures: written ${WRITTEN:-?}, dropped ${DROPPED:-?} (goal 0); share served by B: ${B_SHARE:-?}"
[ -n "${N_ERR:-}${G_ERR:-}" ] && echo "socket errors: nginx ${N_ERR:-none}; abgate ${G_ERR:-none}"
exit 0
