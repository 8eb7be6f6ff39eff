#!/usr/bin/env bash
# Quick start: installs what is missing, builds abgate and runs `abgate demo` (train two model
# versions, register them in the embedded MLflow-compatible registry, A/B test the candidate
# against the champion with a 10% → 50% rollout, promote the winner). Arguments go to the demo,
# e.g. --candidate-worse for the rollback path, --seed N, --users N.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
exec ./build/abgate demo "$@"
