#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS (default 30) from its corpus (tests/fuzz/corpus/NAME, whose
# files also replay as regression inputs); fails if any target finds a crash, leak or overrun.
# usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]
set -euo pipefail
BUILD=$1
SECONDS_EACH=${2:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
for target in idx cifar mat safetensors; do
    work=$(mktemp -d)
    cp -r "$HERE/corpus/$target/." "$work/" 2>/dev/null || true
    echo "fuzz_$target: ${SECONDS_EACH}s"
    files=$(mktemp -d) # the target's input files
    LPC_FUZZ_DIR=$files "$BUILD/tests/fuzz/fuzz_$target" -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 \
        -malloc_limit_mb=4096 -artifact_prefix="$work/crash-" "$work" 2>&1 | tail -3
    rm -rf "$work" "$files"
done
