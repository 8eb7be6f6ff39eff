#!/usr/bin/env bash
# The concurrent suites (HTTP server and its limits, event writer, gateway, admin, outcomes,
# sticky, whole process, serving, the results cache, the network fault suite) built with
# ThreadSanitizer (clang, build-tsan/, ccache) and run: a data race in the test binary or in a
# child `abgate` process fails the test. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DABGATE_SANITIZE=thread -DABGATE_BUILD_BENCH=OFF >/dev/null
ninja -C build-tsan abgate http_test events_test gateway_integration_test serving_integration_test \
  dashboard_test fault_test
# halt_on_error: the first race ends the process with its report on stderr (the test fails).
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
# XGBoost parses a model's trees on an OpenMP team (libgomp), which is not TSan-instrumented:
# its barriers are invisible and the parse reported races inside libxgboost (model-server
# start). Our boosters predict with nthread=1 anyway; with one OpenMP thread every report left
# is about abgate's own threads (a suppression of libxgboost would also hide our misuse of it).
export OMP_NUM_THREADS=1
cd build-tsan
ctest --output-on-failure -j2 --timeout 600 -E '^postgres\.' \
  -R '^(ServerTest|LimitsTest|BatchingWriterTest|GatewayTest|AdminTest|OutcomesTest|StickyTest|ProcessTest|ServingTest|Predictor|ResultsCacheTest|DashboardApiTest|FaultTest|IdleFloodTest)\.' "$@"
