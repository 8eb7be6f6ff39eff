#!/usr/bin/env bash
# The whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (clang, in
# build-asan/, the same build as scripts/fuzz.sh's, ccache) and run; a finding fails the test (or the child
# `abgate` process) that triggered it. PostgreSQL tests run on a throw-away server as in
# scripts/test.sh. Extra arguments go to ctest (e.g. -R Serving).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DABGATE_SANITIZE=address,undefined -DABGATE_BUILD_FUZZERS=ON -DABGATE_BUILD_BENCH=OFF >/dev/null
ninja -C build-asan
(cd tests/npm_client && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

source scripts/throwaway-postgres.sh
start_throwaway_postgres
export ABGATE_TEST_POSTGRES="$PGURI"
# halt_on_error: the first finding ends the process with a report on stderr (the test fails).
# Leak checking is off: the test binaries exit through paths (gtest, XGBoost's and libpq's
# globals) that LeakSanitizer reports without them being abgate's leaks.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=0:detect_stack_use_after_return=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd build-asan
ctest --output-on-failure -j2 --timeout 600 "$@"
