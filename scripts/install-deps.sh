#!/usr/bin/env bash
# Installs abgate's build, test and benchmark dependencies from Debian 12 packages.
# Idempotent: does nothing (no apt-get at all) when every package is already installed.
# Never removes a user's packages: apt runs with --no-remove, see the Boost note below.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libabsl-dev libyaml-cpp-dev libsqlite3-dev libpq-dev postgresql libcli11-dev libssl-dev ca-certificates
  libxgboost-dev libgtest-dev libgmock-dev libbenchmark-dev
  python3 curl nginx-light wrk sqlite3 openssl
  chromium prometheus
  clang libclang-rt-14-dev llvm
)
# clang 14 with its sanitizer and libFuzzer runtimes (libclang-rt-14-dev) and llvm-symbolizer
# (llvm): scripts/sanitize.sh, tsan.sh and fuzz.sh, which .ci/run also runs.
# chromium: the dashboard's browser test (driven by the npm package puppeteer-core, which
# downloads no browser); prometheus: the test that scrapes /metrics with the real server and
# checks it with promtool. Neither starts a service.
# Node.js runs one test: the npm package `mlflow` (a third-party MLflow client) against
# `abgate registry`. Any node/npm on PATH will do; without one, Debian's packages are added.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if ! $SUDO apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}"; then
  echo "install-deps: apt-get refused; if it names libboost1.74-dev, that package (pulled in by" \
       "python3-scipy) conflicts with libboost1.81-dev, which abgate needs — remove it yourself" \
       "if you can spare it." >&2
  exit 1
fi
