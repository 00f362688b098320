#!/bin/sh
# Builds the core unit tests (GoogleTest) without PostgreSQL.
#
#   test/unit/build.sh            builds build/unit_tests
#   OUT=/tmp/t test/unit/build.sh builds /tmp/t
#   test/unit/build.sh --run      builds, then runs the tests (extra arguments go to the binary)
#
# Paths are relative to the repository root; the script moves there itself.
set -eu

cd "$(dirname "$0")/../.."

OUT="${OUT:-build/unit_tests}"
CXX="${CXX:-g++}"
mkdir -p "$(dirname "$OUT")"

$CXX -std=c++17 -O1 -g -Wall -Wextra -Iinclude \
  test/unit/*.cpp src/core/*.cpp \
  -lgtest -lgtest_main -lboost_json -lre2 -pthread -o "$OUT"
echo "built $OUT"

if [ "${1:-}" = "--run" ]; then
  shift
  exec "$OUT" "$@"
fi
