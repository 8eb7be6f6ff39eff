# Sourced by the benchmarks: builds, then gives ROOT (the project), WORK (a temporary folder)
# and PIDS (background processes to end). On exit each PID gets SIGTERM, each nginx that wrote
# a pid file in WORK gets SIGQUIT (graceful), and WORK is removed.
cd "$(dirname "$0")/.."
./scripts/build.sh >/dev/null
ROOT=$PWD
WORK=$(mktemp -d)
PIDS=()
bench_cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for f in "$WORK"/*.pid; do [ -f "$f" ] && kill -QUIT "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.3
  rm -rf "$WORK"
}
trap bench_cleanup EXIT
