#!/usr/bin/env bash
# Builds and runs the whole test suite (unit, integration, whole-process). Everything it needs
# is installed by scripts/install-deps.sh. Tests start the servers they need on 127.0.0.1
# (gateways and model stand-ins on port 0); this script starts one throw-away PostgreSQL on
# loopback for the tests labelled `postgres` and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
# The third-party MLflow client test's npm packages (pinned by package-lock.json).
(cd tests/npm_client && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
# The dashboard's browser test (puppeteer-core, which downloads no browser: Debian's chromium).
(cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# PostgreSQL for the tests labelled `postgres`, on a free port (two suites on one machine, two
# clones, do not share a server).
source scripts/throwaway-postgres.sh
start_throwaway_postgres
export ABGATE_TEST_POSTGRES="$PGURI"

cd build
ctest --output-on-failure -j2 --timeout 300
