#!/usr/bin/env bash
# Serving benchmark, one run: (1) in-process prediction throughput (build/bench/predict_bench),
# (2) the gateway serving both arms in-process vs the same gateway forwarding to
# `abgate model-server` with the same model, wrk on loopback with one-row booking requests.
# 2 cores are shared by wrk, the gateway and (in the second case) the model server.
# Usage: bench/serving_bench.sh [DURATION_S=10] [CONNECTIONS=32]
set -euo pipefail
DURATION=${1:-10}
CONNS=${2:-32}
source "$(dirname "$0")/common.sh"
export ABGATE_LOG_LEVEL=warning

"$ROOT/build/abgate" train --quality strong --seed 1 -o "$WORK/model" 2>/dev/null | head -1
echo
echo "== in-process prediction (one thread per case) =="
"$ROOT/build/bench/predict_bench" "$WORK/model" 2 2>&1 | grep -v WARNING

"$ROOT/build/abgate" model-server --model "$WORK/model" --port 0 --workers 1 > "$WORK/ms.out" 2> "$WORK/ms.err" &
PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$WORK/ms.out" 2>/dev/null && break; sleep 0.1; done
MS_PORT=$(sed -n 's/.*listening http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/ms.out")

gateway_config() {  # NAME ARMS...
  cat > "$WORK/$1.yaml" <<YAML
server: {listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, threads: 2}
events: {store: "sqlite:$WORK/$1.db", flush_ms: 50}
experiments:
  - name: bench
    default: true
    routing_mode: user_hash
    arms:
$2
YAML
}
gateway_config inprocess "      - {name: A, version: \"1\", weight: 80, model: \"$WORK/model\"}
      - {name: B, version: \"2\", weight: 20, model: \"$WORK/model\"}"
gateway_config forwarding "      - {name: A, version: \"1\", weight: 80, upstream: \"http://127.0.0.1:$MS_PORT/invocations\"}
      - {name: B, version: \"2\", weight: 20, upstream: \"http://127.0.0.1:$MS_PORT/invocations\"}"

cat > "$WORK/predict.lua" <<'LUA'
request = function()
  local uid = "user-" .. math.random(1, 1000000)
  local body = '{"user_id":"' .. uid .. '","dataframe_split":{"columns":["lead_time_days","nightly_price","length_of_stay",' ..
    '"is_weekend","loyalty_tier","prior_bookings","mobile","search_rank"],"data":[[' .. math.random(0, 365) ..
    ',189.5,3,0,2,1,1,' .. math.random(1, 20) .. ']]}}'
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, body)
end
LUA

run_gateway() {  # NAME → "rps p50 p99 non2xx"
  "$ROOT/build/abgate" serve --config "$WORK/$1.yaml" > "$WORK/$1.out" 2> "$WORK/$1.err" &
  local pid=$!
  for _ in $(seq 100); do grep -q listening "$WORK/$1.out" 2>/dev/null && break; sleep 0.1; done
  local port
  port=$(sed -n 's/.*data=127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/$1.out")
  wrk -t2 -c"$CONNS" -d2s -s "$WORK/predict.lua" "http://127.0.0.1:$port/predict" >/dev/null
  local out
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/predict.lua" "http://127.0.0.1:$port/predict" 2>&1)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/Non-2xx/ {print $NF}' <<<"$out")"
}
read -r I_RPS I_P50 I_P99 I_BAD <<<"$(run_gateway inprocess)"
read -r F_RPS F_P50 F_P99 F_BAD <<<"$(run_gateway forwarding)"

echo
echo "== gateway /predict, one-row requests: wrk -t2 -c$CONNS -d${DURATION}s, $(nproc) cores =="
printf '%-44s %12s %10s %10s %8s\n' "" "req/s" "p50" "p99" "non-2xx"
printf '%-44s %12s %10s %10s %8s\n' "gateway, arms in-process" "$I_RPS" "$I_P50" "$I_P99" "${I_BAD:-0}"
printf '%-44s %12s %10s %10s %8s\n' "gateway -> abgate model-server" "$F_RPS" "$F_P50" "$F_P99" "${F_BAD:-0}"
awk -v i="$I_RPS" -v f="$F_RPS" 'BEGIN { printf "in-process / forwarding throughput: %.2fx\n", i / f }'
