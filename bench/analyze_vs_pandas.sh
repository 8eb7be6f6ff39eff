#!/usr/bin/env bash
# Analysis benchmark: `abgate analyze` on an event store with N exposures and N outcomes
# (default 10M each, 2M users, 80/20) against pandas + scipy doing the same aggregation and
# tests, in one run. Prints both times and the ratio. ABGATE_ANALYZE_TIMINGS=1 adds abgate's
# phase times.
# pandas/scipy come from Debian packages unpacked next to the project (they conflict with
# libboost1.81-dev if installed; see DEPS.md): set SCIPY_ROOT to the unpacked root, e.g.
#   cd "$(mktemp -d)" && apt-get download python3-scipy python3-numpy python3-pandas python3-pandas-lib \
#     python3-dateutil python3-tz liblbfgsb0 libarpack2 libsuperlu5 && for d in *.deb; do dpkg -x "$d" root; done
# Usage: SCIPY_ROOT=/path/to/root bench/analyze_vs_pandas.sh [N=10000000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
USERS=$((N / 5))
./scripts/build.sh >/dev/null
DB=${BENCH_DB:-/tmp/abgate-bench-$N.db}
if [ ! -f "$DB" ]; then
  echo "generating $DB ($N exposures, $N outcomes, $USERS users)..."
  sqlite3 "$DB" <<SQL
PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
CREATE TABLE exposures (request_id TEXT NOT NULL, ts INTEGER NOT NULL, experiment TEXT NOT NULL, unit_id TEXT,
  unit_random INTEGER NOT NULL, arm TEXT NOT NULL, assigned_arm TEXT NOT NULL, model_name TEXT, model_version TEXT,
  routing_mode TEXT NOT NULL, status INTEGER NOT NULL, latency_us INTEGER NOT NULL, score REAL, fallback INTEGER NOT NULL,
  in_experiment INTEGER NOT NULL);
CREATE TABLE outcomes (ts INTEGER NOT NULL, experiment TEXT NOT NULL, request_id TEXT, unit_id TEXT, metric TEXT NOT NULL,
  value REAL NOT NULL);
BEGIN;
INSERT INTO exposures SELECT printf('%032x', value), 1790000000000000 + value * 1000, 'bench', 'user' || (value % $USERS), 0,
  CASE WHEN ((value % $USERS) * 2654435761) % 100 < 80 THEN 'A' ELSE 'B' END,
  CASE WHEN ((value % $USERS) * 2654435761) % 100 < 80 THEN 'A' ELSE 'B' END,
  'hyatt_booking_model', CASE WHEN ((value % $USERS) * 2654435761) % 100 < 80 THEN '7' ELSE '8' END, 'user_hash', 200, 900,
  ((value * 48271) % 1000) / 1000.0, 0, 1 FROM generate_series(0, $N - 1);
INSERT INTO outcomes SELECT 1790000000000000 + value * 1000 + 500, 'bench', NULL, 'user' || (value % $USERS), 'booked',
  CASE WHEN (value * 69069) % 100 < 10 THEN 1 ELSE 0 END FROM generate_series(0, $N - 1);
COMMIT;
SQL
fi
# The rows above are what an abgate before event blocks stored; the first abgate to open the
# store as a writer (any gateway, or `abgate import` of nothing, as here) adds the blocks that
# `abgate analyze` reads (src/events/event_blocks.h). pandas reads the rows.
./build/abgate import outcomes /dev/null --store "sqlite:$DB" >/dev/null
# Warm the page cache for both.
cat "$DB" > /dev/null
start=$(date +%s.%N)
./build/abgate analyze --store "sqlite:$DB" --experiment bench --metric booked --control A --weights 80,20 --format json > /tmp/abgate-bench-report.json
end=$(date +%s.%N)
ABGATE_S=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
echo "abgate analyze: ${ABGATE_S} s ($N exposures, $N outcomes)"
if [ -n "${SCIPY_ROOT:-}" ]; then
  LINE=$(LD_LIBRARY_PATH="$SCIPY_ROOT/usr/lib/x86_64-linux-gnu" PYTHONPATH="$SCIPY_ROOT/usr/lib/python3/dist-packages" \
    timeout 1800 /usr/bin/python3 bench/analyze_vs_pandas.py "$DB" bench)
  echo "$LINE"
  PANDAS_S=$(awk '{print $NF}' <<<"$LINE")
  awk -v a="$ABGATE_S" -v p="$PANDAS_S" 'BEGIN { printf "ratio pandas/abgate: %.1fx faster (goal >= 10x; abgate goal <= 5 s)\n", p / a }'
else
  echo "SCIPY_ROOT not set: skipping the pandas + scipy side"
fi
