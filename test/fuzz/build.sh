#!/bin/sh
# Builds the libFuzzer targets of the core (clang with libFuzzer, ASan and UBSan).
#
#   test/fuzz/build.sh                  builds build/fuzz/fuzz_event_batch and fuzz_uuid
#   test/fuzz/build.sh --run [SECONDS]  builds, then fuzzes each target for SECONDS (default 60)
#
# A run reads the seeds in test/fuzz/corpus/<target>/ and writes what it finds to
# build/fuzz/corpus/<target>/, so the committed seed corpus stays small. Crash inputs land in
# build/fuzz/. Paths are relative to the repository root; the script moves there itself.
set -eu

cd "$(dirname "$0")/../.."

OUT_DIR="${OUT_DIR:-build/fuzz}"
CXX="${CXX:-clang++}"
mkdir -p "$OUT_DIR"

for target in event_batch uuid; do
  $CXX -std=c++17 -g -O1 -Wall -Wextra \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Iinclude test/fuzz/fuzz_$target.cpp src/core/*.cpp \
    -lboost_json -o "$OUT_DIR/fuzz_$target"
  echo "built $OUT_DIR/fuzz_$target"
done

if [ "${1:-}" = "--run" ]; then
  seconds="${2:-60}"
  for target in event_batch uuid; do
    dict=""
    [ -f "test/fuzz/$target.dict" ] && dict="-dict=test/fuzz/$target.dict"
    mkdir -p "$OUT_DIR/corpus/$target"
    echo "fuzzing $target for ${seconds}s"
    "$OUT_DIR/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$OUT_DIR/${target}-" $dict \
      "$OUT_DIR/corpus/$target" "test/fuzz/corpus/$target"
  done
fi
