#!/usr/bin/env bash
# Packs a GPU build (-DLPC_CUDA=ON -DLPC_STATIC_DEPS=ON) for a machine that has only the CUDA toolkit:
# stripped lpc, test_gpu and kernel_lab with the bundled libraries, compressed into OUT.tar.xz.
# usage: bench/pack_device.sh BUILD_DIR OUT.tar.xz   (then on the GPU machine:
#        mkdir -p /tmp/lpc && tar xJf OUT.tar.xz -C /tmp/lpc && bench/device.sh /tmp/lpc OUT_DIR)
set -euo pipefail
BUILD=$1
OUT=$(realpath -m "$2")
stage=$(mktemp -d)
mkdir -p "$stage/tests" "$stage/lib"
strip -o "$stage/lpc" "$BUILD/lpc"
strip -o "$stage/tests/test_gpu" "$BUILD/tests/test_gpu"
strip -o "$stage/kernel_lab" "$BUILD/kernel_lab"
cp "$BUILD"/lib/* "$stage/lib/"
tar cJf "$OUT" -C "$stage" .
rm -rf "$stage"
ls -la "$OUT"
