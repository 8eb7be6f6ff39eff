#!/usr/bin/env bash
# Data-plane benchmark: nginx `split_clients` 80/20 (the anchor) vs abgate (80/20 user_hash,
# exposure logging on), in front of the same fast fake model upstreams (nginx `return 200`),
# in one run, with wrk on loopback.
#
# Default mode: ROUNDS interleaved rounds (nginx then abgate, then abgate then nginx, ...), each
# side measured for DURATION seconds. Per round and summarised (min–max over rounds): req/s,
# requests per router CPU-second (utime+stime from /proc/PID/stat of the router's processes —
# nginx's workers, abgate's process — over the measured window only), p50/p99, and the ratios
# abgate/nginx. At the end abgate's exposures are checked: every request it answered is written
# and 0 dropped (the check fails the script otherwise).
#
# Connections mode (`conns`): for 1, 64 and 1,000 keep-alive connections, one interleaved round
# each, with both routers' RSS (VmRSS from /proc, the largest of samples taken during the run;
# nginx: master + workers).
#
# Bounded: every wrk run lasts DURATION seconds (plus a 2 s warm-up per side and mode).
# Profile: with PERF_DATA=FILE, abgate's first measured run is recorded by `perf record -g
# --call-graph dwarf` into FILE (`perf report -i FILE --no-children`); that run's figures
# include perf's own cost.
# Syscalls mode (`syscalls`): each side under `strace -c -f` for DURATION seconds of wrk at
# CONNECTIONS connections; prints every syscall's count per answered request, side by side (strace
# slows both sides down, so only the counts per request mean anything, not the rates), then
# glibc malloc calls per request (a perf uprobe; needs root).
# ABGATE_BIN=PATH benchmarks another build of abgate (default: build/abgate); PERF_FREQ sets
# perf's sampling rate (default 499 Hz).
# Usage: bench/gateway_vs_nginx.sh [DURATION_S=10] [CONNECTIONS=64] [ROUNDS=3]
#        bench/gateway_vs_nginx.sh conns [DURATION_S=10]
#        bench/gateway_vs_nginx.sh syscalls [DURATION_S=10] [CONNECTIONS=64]
set -euo pipefail
MODE=ratio
if [ "${1:-}" = conns ] || [ "${1:-}" = syscalls ]; then MODE=$1; shift; fi
DURATION=${1:-10}
CONNS=${2:-64}
ROUNDS=${3:-3}
source "$(dirname "$0")/common.sh"

UP_A=19107; UP_B=19108; NGX=19180; GW=19181; GW_ADMIN=19182
HZ=$(getconf CLK_TCK)
ulimit -n 20000 2>/dev/null || true  # 1,000 client connections plus upstream connections

# Fake models: one nginx worker answering MLflow-shaped predictions.
cat > "$WORK/upstreams.conf" <<NGINX
worker_processes 1;
pid $WORK/upstreams.pid;
events { worker_connections 8192; }
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
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $WORK/ab;
  keepalive_requests 1000000;
  upstream model_a { server 127.0.0.1:$UP_A; keepalive 1024; }
  upstream model_b { server 127.0.0.1:$UP_B; keepalive 1024; }
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
server: {listen: 127.0.0.1:$GW, admin_listen: 127.0.0.1:$GW_ADMIN, threads: 2, max_connections: 5000}
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
request = function()
  local uid = "user-" .. math.random(1, 1000000)
  local body = '{"user_id":"' .. uid .. '","dataframe_split":{"columns":["lead_time","price"],"data":[[12,180.5]]}}'
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json", ["X-User-Id"] = uid}, body)
end
LUA

nginx -c "$WORK/upstreams.conf" -p "$WORK" -e "$WORK/upstreams-error.log"
nginx -c "$WORK/anchor.conf" -p "$WORK" -e "$WORK/anchor-error.log"
ABGATE_LOG_LEVEL=warning "${ABGATE_BIN:-$ROOT/build/abgate}" serve --config "$WORK/gateway.yaml" > "$WORK/gw.out" 2> "$WORK/gw.err" &
GW_PID=$!
PIDS+=("$GW_PID")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GW/readyz" >/dev/null && break; sleep 0.1; done
for _ in $(seq 50); do [ -s "$WORK/anchor.pid" ] && break; sleep 0.1; done
NGX_MASTER=$(cat "$WORK/anchor.pid")
NGX_WORKERS=$(ps -o pid= --ppid "$NGX_MASTER" | tr '\n' ' ')

cpu_ticks() {  # PIDS... → "utime stime" (clock ticks) summed over every thread of each process
  local u=0 s=0 p pu ps
  for p in "$@"; do
    # Fields after "(comm)": state is $1, utime $12, stime $13.
    read -r pu ps < <(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12, $13}')
    u=$((u + pu)); s=$((s + ps))
  done
  echo "$u $s"
}
upstream_connects() {  # abgate's upstream connections opened so far (from /metrics)
  curl -s "http://127.0.0.1:$GW/metrics" | awk '$1 == "abgate_upstream_connects_total" {n = $2} END {print n + 0}'
}
rss_kb() {  # PIDS... → VmRSS summed (kB)
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done
  echo "$t"
}
to_ms() {  # wrk prints 812.00us / 1.20ms / 1.01s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

run() {  # run NAME PORT CONNS PIDS... → "rps req_per_cpu_s p50_ms p99_ms non2xx errors max_rss_kb requests
        #   user_us sys_us connects" (connects: abgate's new upstream connections, "-" for nginx)
  local name=$1 port=$2 conns=$3; shift 3
  local threads=2; [ "$conns" -lt 2 ] && threads=1
  local before after out max_rss=0 r
  local connects0=""
  [ "$port" = "$GW" ] && connects0=$(upstream_connects)
  before=$(cpu_ticks "$@")
  wrk -t"$threads" -c"$conns" -d"${DURATION}s" --timeout 5s --latency -s "$WORK/predict.lua" \
    "http://127.0.0.1:$port/predict" > "$WORK/$name.wrk" 2>&1 &
  local wrk_pid=$!
  if [ -n "${PERF_DATA:-}" ] && [ "$name" != "${name#abgate}" ] && [ ! -e "$PERF_DATA" ]; then
    perf record -q -g --call-graph dwarf,16384 -F "${PERF_FREQ:-499}" -p "$1" -o "$PERF_DATA" -- sleep "$DURATION" 2>/dev/null &
  fi
  # RSS sampled while the connections are open (bounded: the wrk run's length).
  for _ in $(seq $((DURATION * 4))); do
    kill -0 "$wrk_pid" 2>/dev/null || break
    r=$(rss_kb "$@"); [ "$r" -gt "$max_rss" ] && max_rss=$r
    sleep 0.25
  done
  wait "$wrk_pid"
  after=$(cpu_ticks "$@")
  out=$(cat "$WORK/$name.wrk")
  local rps p50 p99 errs non2xx requests
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Socket errors/ {gsub(/ /, ""); print}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  local per_cpu user_us sys_us u0 s0 u1 s1 cpu connects=-
  [ -n "$connects0" ] && connects=$(( $(upstream_connects) - connects0 ))
  read -r u0 s0 <<<"$before"; read -r u1 s1 <<<"$after"
  # CPU per request split into user and kernel time (µs), from the same ticks.
  cpu=$(awk -v n="$requests" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$HZ" \
    'BEGIN { printf "%.0f %.1f %.1f", (u + s) ? n / ((u + s) / hz) : 0, n ? u / hz / n * 1e6 : 0, n ? s / hz / n * 1e6 : 0 }')
  read -r per_cpu user_us sys_us <<<"$cpu"
  echo "$rps $per_cpu $(to_ms "$p50") $(to_ms "$p99") ${non2xx:-0} ${errs:-none} $max_rss $requests $user_us $sys_us $connects"
}

warm() {  # CONNS
  local threads=2; [ "$1" -lt 2 ] && threads=1
  wrk -t$threads -c"$1" -d2s -s "$WORK/predict.lua" "http://127.0.0.1:$NGX/predict" >/dev/null
  wrk -t$threads -c"$1" -d2s -s "$WORK/predict.lua" "http://127.0.0.1:$GW/predict" >/dev/null
}

# One round: both sides, order alternating by round so neither always runs second.
# Prints a row per side and appends "n_rps n_cpu n_p99 g_rps g_cpu g_p99" to $WORK/rounds.
round() {  # LABEL CONNS INDEX
  local label=$1 conns=$2 i=$3 N G
  if [ $((i % 2)) -eq 1 ]; then
    N=$(run "nginx-$label" $NGX "$conns" $NGX_WORKERS)
    G=$(run "abgate-$label" $GW "$conns" "$GW_PID")
  else
    G=$(run "abgate-$label" $GW "$conns" "$GW_PID")
    N=$(run "nginx-$label" $NGX "$conns" $NGX_WORKERS)
  fi
  read -r n_rps n_cpu n_p50 n_p99 n_bad n_err n_rss n_req n_us n_sys n_conn <<<"$N"
  read -r g_rps g_cpu g_p50 g_p99 g_bad g_err g_rss g_req g_us g_sys g_conn <<<"$G"
  n_rss=$(rss_kb "$NGX_MASTER" $NGX_WORKERS | awk -v s="$n_rss" -v m="$(rss_kb "$NGX_MASTER")" '{print s + m}')
  printf '%-8s %-22s %10s %12s %8s %8s %8s %8s %7s %7s %9s  %s\n' "$label" "nginx split_clients" "$n_rps" "$n_cpu" \
    "$n_us" "$n_sys" "$n_p50" "$n_p99" "$n_bad" "$((n_rss / 1024))" "$n_conn" "$n_err"
  printf '%-8s %-22s %10s %12s %8s %8s %8s %8s %7s %7s %9s  %s\n' "$label" "abgate user_hash" "$g_rps" "$g_cpu" \
    "$g_us" "$g_sys" "$g_p50" "$g_p99" "$g_bad" "$((g_rss / 1024))" "$g_conn" "$g_err"
  awk -v gr="$g_rps" -v nr="$n_rps" -v gc="$g_cpu" -v nc="$n_cpu" -v gp="$g_p99" -v np="$n_p99" -v l="$label" \
    'BEGIN { printf "%-8s ratio abgate/nginx: req/s %.2fx, req per CPU-s %.2fx, p99 %.2fx\n", l, gr/nr, gc/nc, gp/np }'
  echo "$n_rps $n_cpu $n_p99 $g_rps $g_cpu $g_p99" >> "$WORK/rounds"
}

header() {
  printf '%-8s %-22s %10s %12s %8s %8s %8s %8s %7s %7s %9s  %s\n' "round" "router" "req/s" "req/CPU-s" "user us" \
    "kern us" "p50 ms" "p99 ms" "non-2xx" "RSS MB" "upstr conn" "socket errors"
}

echo "gateway benchmark: wrk on 127.0.0.1, ${DURATION}s per side per round, $(nproc) cores," \
  "upstreams = nginx return 200; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "req/CPU-s: requests per CPU-second of the router (nginx: its 2 workers; abgate: its process);" \
  "user us, kern us: its CPU per request; upstr conn: upstream connections abgate opened in the run"
: > "$WORK/rounds"
if [ "$MODE" = syscalls ]; then
  warm "$CONNS"
  strace_side() {  # NAME PORT PIDS... → $WORK/NAME.strace (strace -c table), $WORK/NAME.requests
    local name=$1 port=$2; shift 2
    local args=() p
    for p in "$@"; do args+=(-p "$p"); done
    strace -c -f -o "$WORK/$name.strace" "${args[@]}" 2>/dev/null &
    local st=$!
    sleep 1  # attached before the load starts
    wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 5s -s "$WORK/predict.lua" "http://127.0.0.1:$port/predict" \
      > "$WORK/$name.wrk" 2>&1
    kill -INT "$st"; wait "$st" || true
    awk '/requests in/ {print $1}' "$WORK/$name.wrk" > "$WORK/$name.requests"
  }
  strace_side nginx $NGX $NGX_WORKERS
  strace_side abgate $GW "$GW_PID"
  echo "syscalls per answered request (strace -c -f, ${DURATION}s of wrk, $CONNS connections;" \
    "nginx $(cat "$WORK/nginx.requests") requests, abgate $(cat "$WORK/abgate.requests"))"
  printf '%-20s %10s %10s %10s %10s\n' syscall nginx "(failed)" abgate "(failed)"
  # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall.
  awk -v nn="$(cat "$WORK/nginx.requests")" -v na="$(cat "$WORK/abgate.requests")" '
    FNR == 1 { side++ }
    $1 ~ /^[0-9.]+$/ && NF >= 5 { name = $NF; c[name, side] += $4; if (NF == 6) e[name, side] += $5; names[name] = 1 }
    END { for (n in names) printf "%-20s %10.3f %10.3f %10.3f %10.3f\n", n, c[n, 1] / nn, e[n, 1] / nn, c[n, 2] / na, e[n, 2] / na }' \
    "$WORK/nginx.strace" "$WORK/abgate.strace" | sort -k4 -nr | awk '$2 + $4 >= 0.001'
  # Heap allocations per request: glibc malloc calls counted by a perf uprobe (root only; the
  # probe is added once and left for later runs).
  LIBC=$(ldd "${ABGATE_BIN:-$ROOT/build/abgate}" | awk '/libc.so.6/ {print $3}')
  if perf probe -l 2>/dev/null | grep -q probe_libc:malloc || perf probe -q -x "$LIBC" -a malloc 2>/dev/null; then
    mallocs_side() {  # NAME PORT PIDS... → malloc calls per answered request
      local name=$1 port=$2; shift 2
      local pids; pids=$(IFS=,; echo "$*")
      perf stat -x, -e probe_libc:malloc -p "$pids" -o "$WORK/$name.mallocs" -- sleep $((DURATION + 1)) &
      local ps=$!
      sleep 0.5
      wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 5s -s "$WORK/predict.lua" "http://127.0.0.1:$port/predict" \
        > "$WORK/$name.wrk2" 2>&1
      wait "$ps" || true
      awk -F, -v n="$(awk '/requests in/ {print $1}' "$WORK/$name.wrk2")" '$3 == "probe_libc:malloc" {printf "%.2f", $1 / n}' \
        "$WORK/$name.mallocs"
    }
    printf '%-20s %10s %10s %10s\n' "malloc calls" "$(mallocs_side nginx $NGX $NGX_WORKERS)" "" \
      "$(mallocs_side abgate $GW "$GW_PID")"
  fi
elif [ "$MODE" = conns ]; then
  header
  for c in 1 64 1000; do
    warm "$c"
    round "c=$c" "$c" 1
  done
else
  warm "$CONNS"
  echo "connections: $CONNS, rounds: $ROUNDS (interleaved)"
  header
  for i in $(seq "$ROUNDS"); do round "$i" "$CONNS" "$i"; done
  echo
  awk '{ r = $4/$1; c = $5/$2; p = $6/$3
         if (NR == 1 || r < r0) r0 = r; if (NR == 1 || r > r1) r1 = r
         if (NR == 1 || c < c0) c0 = c; if (NR == 1 || c > c1) c1 = c
         if (NR == 1 || p < p0) p0 = p; if (NR == 1 || p > p1) p1 = p
         if (NR == 1 || $3 < n0) n0 = $3; if (NR == 1 || $3 > n1) n1 = $3
         if (NR == 1 || $6 < g0) g0 = $6; if (NR == 1 || $6 > g1) g1 = $6 }
       END { printf "over %d rounds, abgate/nginx: req/s %.2f-%.2fx (goal >= 1.00x), req per CPU-s %.2f-%.2fx (goal >= 1.30x),\n", NR, r0, r1, c0, c1
             printf "  p99 %.2f-%.2fx (goal <= 1.00x; nginx %.2f-%.2f ms, abgate %.2f-%.2f ms)\n", p0, p1, n0, n1, g0, g1 }' "$WORK/rounds"
fi

# Exposures: every answered request written, none dropped (after the writer's queue drains).
metric() { awk -v m="$1" '$1 == m {print $2}' <<<"$METRICS"; }
for _ in $(seq 100); do
  METRICS=$(curl -s "http://127.0.0.1:$GW/metrics")
  [ "$(metric abgate_event_queue_depth)" = 0 ] && break
  sleep 0.1
done
DROPPED=$(metric abgate_events_dropped_total)
WRITTEN=$(metric abgate_events_written_total)
ANSWERED=$(awk '/^abgate_requests_total\{/ {t += $2} END {printf "%d", t}' <<<"$METRICS")
B_SHARE=$(awk '/^abgate_requests_total.*arm="B",status="200"/ {b=$2} /^abgate_requests_total.*status="200"/ {t+=$2} END {if (t) printf "%.3f", b/t}' <<<"$METRICS")
echo "abgate exposures: answered $ANSWERED, written ${WRITTEN:-?}, dropped ${DROPPED:-?} (goal: all written, 0 dropped);" \
  "share served by B: ${B_SHARE:-?}; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${DROPPED:-x}" != 0 ] || [ "${WRITTEN:-x}" != "$ANSWERED" ]; then
  echo "FAIL: exposures dropped or unwritten" >&2
  exit 1
fi
