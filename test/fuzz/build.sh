#!/bin/sh
# Builds the libFuzzer targets of the core (clang with libFuzzer, ASan and UBSan).
#
#   test/fuzz/build.sh                  builds build/fuzz/fuzz_<target> for each test/fuzz/fuzz_<target>.cpp
#   test/fuzz/build.sh --run [SECONDS]  builds, then fuzzes each target for SECONDS (default 60)
#
# A run uses the dictionary test/fuzz/<target>.dict, or else the one of its family
# (schema_compile and schema_validate share schema.dict), when there is one.
# A run reads the seeds in test/fuzz/corpus/<target>/ and writes what it finds to
# build/fuzz/corpus/<target>/, so the committed seed corpus stays small. Crash inputs land in
# build/fuzz/. Paths are relative to the repository root; the script moves there itself.
set -eu

cd "$(dirname "$0")/../.."

OUT_DIR="${OUT_DIR:-build/fuzz}"
CXX="${CXX:-clang++}"
mkdir -p "$OUT_DIR"

# Every target in test/fuzz/ (test/run.sh counts them the same way).
TARGETS=$(for f in test/fuzz/fuzz_*.cpp; do f=${f#test/fuzz/fuzz_}; echo "${f%.cpp}"; done)

for target in $TARGETS; do
  $CXX -std=c++17 -g -O1 -Wall -Wextra \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Iinclude test/fuzz/fuzz_$target.cpp src/core/*.cpp \
    -lboost_json -lre2 -o "$OUT_DIR/fuzz_$target"
  echo "built $OUT_DIR/fuzz_$target"
done

if [ "${1:-}" = "--run" ]; then
  seconds="${2:-60}"
  for target in $TARGETS; do
    dict=""
    if [ -f "test/fuzz/$target.dict" ]; then dict="-dict=test/fuzz/$target.dict"
    elif [ -f "test/fuzz/${target%%_*}.dict" ]; then dict="-dict=test/fuzz/${target%%_*}.dict"; fi
    mkdir -p "$OUT_DIR/corpus/$target"
    echo "fuzzing $target for ${seconds}s"
    "$OUT_DIR/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$OUT_DIR/${target}-" $dict \
      "$OUT_DIR/corpus/$target" "test/fuzz/corpus/$target"
  done
fi
