#!/usr/bin/env bash
# Builds and runs the whole test suite (unit, integration, whole-process). Everything it needs
# is installed by scripts/install-deps.sh; every server a test needs is started by the test
# itself on 127.0.0.1 (port 0) and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
ctest --output-on-failure -j2 --timeout 300
