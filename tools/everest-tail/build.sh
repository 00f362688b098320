#!/bin/sh
# Builds everest-tail (tools/everest-tail/everest_tail.cpp: C++17 and libpq, nothing else).
#
#   tools/everest-tail/build.sh                  builds build/everest-tail
#   OUT=/tmp/t tools/everest-tail/build.sh       builds /tmp/t
#
# Paths are relative to the repository root; the script moves there itself.
set -eu

cd "$(dirname "$0")/../.."

OUT="${OUT:-build/everest-tail}"
CXX="${CXX:-g++}"
mkdir -p "$(dirname "$OUT")"

$CXX -std=c++17 -O2 -Wall -Wextra -I"$(pg_config --includedir)" \
  tools/everest-tail/everest_tail.cpp -L"$(pg_config --libdir)" -lpq -o "$OUT"
echo "built $OUT"
