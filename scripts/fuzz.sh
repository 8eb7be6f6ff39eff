#!/usr/bin/env bash
# Builds the libFuzzer harnesses in fuzz/ (clang, AddressSanitizer + UndefinedBehaviorSanitizer,
# in build-asan/ with the sanitizer test suite, ccache shared) and runs each for SECONDS
# (default 60), starting from its committed seeds in fuzz/corpus/<name>/. New inputs go to a
# temporary corpus, not into the repository. A crash, leak of a limit, timeout or sanitizer
# finding stops that harness and fails the script; the input is kept in build-asan/fuzz-findings/.
# Usage: scripts/fuzz.sh [SECONDS] [harness...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
./scripts/install-deps.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DABGATE_SANITIZE=address,undefined -DABGATE_BUILD_FUZZERS=ON -DABGATE_BUILD_BENCH=OFF >/dev/null

# name and -max_len: scoring bodies up to the 1 MB limit; the others up to 64 KB.
HARNESSES=(
  "scoring_input_fuzz 1048577"
  "search_filter_fuzz 65536"
  "event_blocks_fuzz 65536"
  "results_csv_fuzz 65536"
  "config_fuzz 65536"
  "outcomes_fuzz 65536"
  "http_head_fuzz 65536"
)
targets=()
for h in "${HARNESSES[@]}"; do targets+=("${h%% *}"); done
ninja -C build-asan "${targets[@]}"

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
findings="$PWD/build-asan/fuzz-findings"
mkdir -p "$findings"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
causes=()
for h in "${HARNESSES[@]}"; do
  name=${h%% *}
  max_len=${h##* }
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  mkdir -p "$work/$name"
  echo "fuzz: $name for ${SECONDS_EACH}s" >&2
  start=$SECONDS
  # -rss_limit_mb: a body must not need gigabytes (issue 14); -timeout: nor seconds.
  if ! ./build-asan/fuzz/"$name" "$work/$name" "fuzz/corpus/$name" -max_total_time="$SECONDS_EACH" \
      -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$findings/$name-" >"$work/$name.log" 2>&1; then
    tail -n 60 "$work/$name.log" >&2
    failed+=("$name")
    # The cause in a few lines, repeated at the very end (a CI log is often cut to its last
    # lines): the harness's own verdict (how the exchange ended, errno, timings), the helper's
    # and the sanitizer's lines, the executions and time it took, and where the input is.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log" | tail -n 1)
    cause=$(grep -E "^${name}: |^loopback: |ERROR: |runtime error: | in LLVMFuzzerTestOneInput |^SUMMARY: |Test unit written to" \
      "$work/$name.log" | head -n 10 | sed 's/^ *#[0-9]* 0x[0-9a-f]* in /  at /; s/^/  /' || true)
    causes+=("fuzz: $name FAILED after $((SECONDS - start)) s, ${execs:-?} executions:"$'\n'"$cause")
  else
    echo "fuzz: $name ok in $((SECONDS - start)) s:" \
      "$(grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^loopback: " "$work/$name.log" | tr '\n' ' ' || true)" >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  for c in "${causes[@]}"; do echo "$c" >&2; done
  echo "fuzz: findings in ${failed[*]} (inputs in $findings)" >&2
  exit 1
fi
echo "fuzz: no findings" >&2
