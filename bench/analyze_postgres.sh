#!/usr/bin/env bash
# PostgreSQL analysis benchmark, one run: `abgate analyze` of N exposures + N outcomes written
# through the PostgreSQL event sink (so the experiment has event blocks) against the same rows
# copied by SQL into a second experiment (no blocks: read row by row, in page ranges), on a
# throw-away PostgreSQL on a free loopback port. Prints both times and the ratio.
# Usage: bench/analyze_postgres.sh [N=1000000]   (writing goes at ~30k rows/s)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
./scripts/build.sh >/dev/null
ROOT=$PWD
source scripts/throwaway-postgres.sh
start_throwaway_postgres -c shared_buffers=512MB
WORK=$PGBASE  # removed with the server
PORT=$PGPORT
STORE="$PGURI"

# The seed's ab_results.csv shape: one exposure (arm = model version, score) and one booked
# outcome per row; 5 rows per user, 80/20 by user.
awk -v n="$N" 'BEGIN { print "user_id,model_version,y_true,y_pred"; srand(7);
  for (i = 0; i < n; i++) { u = i % int(n / 5); printf "user%d,%d,%d,%.3f\n", u, ((u * 2654435761) % 100 < 80) ? 7 : 8,
    rand() < 0.1, rand() } }' > "$WORK/results.csv"
start=$(date +%s.%N)
"$ROOT/build/abgate" import results "$WORK/results.csv" --store "$STORE" --experiment with_blocks >/dev/null
end=$(date +%s.%N)
echo "wrote $N exposures + $N outcomes through the sink in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
psql -q -h 127.0.0.1 -p "$PORT" -U postgres <<SQL
INSERT INTO exposures SELECT request_id || '-r', ts, 'rows_only', unit_id, unit_random, arm, assigned_arm, model_name,
  model_version, routing_mode, status, latency_us, score, fallback, in_experiment FROM exposures WHERE experiment = 'with_blocks';
INSERT INTO outcomes SELECT ts, 'rows_only', request_id || '-r', unit_id, metric, value, event_id FROM outcomes
  WHERE experiment = 'with_blocks';
VACUUM ANALYZE;
SQL

time_analyze() {
  local s e
  s=$(date +%s.%N)
  "$ROOT/build/abgate" analyze --store "$STORE" --experiment "$1" --format json > "$WORK/$1.json"
  e=$(date +%s.%N)
  awk -v a="$s" -v b="$e" 'BEGIN { printf "%.2f", b - a }'
}
for run in 1 2 3; do
  B=$(time_analyze with_blocks)
  R=$(time_analyze rows_only)
  echo "run $run: event blocks ${B} s, rows ${R} s, ratio $(awk -v b="$B" -v r="$R" 'BEGIN { printf "%.1f", r / b }')x"
done
python3 - "$WORK/with_blocks.json" "$WORK/rows_only.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
same = [x["units"] for x in a["arms"]] == [x["units"] for x in b["arms"]]
print("same units per arm from blocks and rows:", same)
sys.exit(0 if same else 1)
PY
