#!/bin/sh
# Builds the stress test (test/stress/stress.cpp: libpq and threads, nothing else).
#
#   test/stress/build.sh                 builds build/everest-stress
#   OUT=/tmp/s test/stress/build.sh      builds /tmp/s
#
# Paths are relative to the repository root; the script moves there itself.
set -eu

cd "$(dirname "$0")/../.."

OUT="${OUT:-build/everest-stress}"
CXX="${CXX:-g++}"
mkdir -p "$(dirname "$OUT")"

$CXX -std=c++17 -O2 -Wall -Wextra -I"$(pg_config --includedir)" \
  test/stress/stress.cpp -L"$(pg_config --libdir)" -lpq -pthread -o "$OUT"
echo "built $OUT"
