#!/usr/bin/env bash
# Runs on a GPU machine from a build made elsewhere with -DLPC_CUDA=ON -DLPC_STATIC_DEPS=ON:
# the GPU parity tests, compute-sanitizer (memcheck and racecheck on a short benchmark run, memcheck on
# a short training run with sample grids), and the benchmarks; logs and JSON go to OUT_DIR. The ctest
# files of a build made on another machine point at its paths, so the test programs are run directly.
# usage: bench/device.sh BUILD_DIR OUT_DIR [PART]
#   PART: all (default), checks (tests, kernel lab, sanitizers), bench (the benchmark table), or quick
#   (everything, the benchmarks on cifar32 batch 64 only); a full run takes about ten minutes on an H200
set -uo pipefail
BUILD=$(realpath "$1")
OUT=$2
PART=${3:-all}
case $PART in all | checks | bench | quick) ;; *) echo "device.sh: PART must be all, checks, bench or quick" >&2; exit 2 ;; esac
mkdir -p "$OUT"
# the NVIDIA libraries for lpc: the CUDA toolkit's, or the ones PyTorch's wheels bring; PyTorch itself
# keeps the environment it came with, less any directory of it that holds a cuDNN (a caller's library
# path would otherwise hand the twin lpc's cuDNN in place of its wheel's own)
ORIG_LD_LIBRARY_PATH=
IFS=: read -ra dirs <<<"${LD_LIBRARY_PATH:-}"
for d in "${dirs[@]}"; do
    compgen -G "$d/libcudnn.so*" >/dev/null || ORIG_LD_LIBRARY_PATH=${ORIG_LD_LIBRARY_PATH:+$ORIG_LD_LIBRARY_PATH:}$d
done
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu \
    $(python3 -c 'import nvidia, os; p = nvidia.__path__[0]; print(" ".join(os.path.join(p, d, "lib") for d in os.listdir(p)))' 2>/dev/null); do
    [ -d "$d" ] && LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d
done
export LD_LIBRARY_PATH
LPC=$BUILD/lpc
{
    date -u +"date: %Y-%m-%dT%H:%M:%SZ"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())' 2>&1 | tail -1
    ldd "$LPC" | grep -E "cudnn|cublas|curand|cudart"
} >"$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

gpu_rc=0
if [ "$PART" != bench ]; then
echo "== GPU parity tests"
"$BUILD/tests/test_gpu" 2>&1 | tee "$OUT/test_gpu.log"
gpu_rc=${PIPESTATUS[0]}
"$BUILD/tests/test_gpu" --tf32 2>&1 | tee "$OUT/test_gpu_tf32.log"
[ "${PIPESTATUS[0]}" = 0 ] || gpu_rc=1
"$BUILD/tests/test_gpu" --timed 2>&1 | tee "$OUT/test_gpu_timed.log"
[ "${PIPESTATUS[0]}" = 0 ] || gpu_rc=1
"$BUILD/tests/test_gpu" --timed --tf32 2>&1 | tee "$OUT/test_gpu_timed_tf32.log"
[ "${PIPESTATUS[0]}" = 0 ] || gpu_rc=1

echo "== kernel lab: fused kernels against the unfused sequences they replace"
[ -x "$BUILD/kernel_lab" ] && "$BUILD/kernel_lab" 2>&1 | tee "$OUT/kernel_lab.jsonl"

echo "== compute-sanitizer on short benchmark and training runs (an error fails the script)"
if command -v compute-sanitizer >/dev/null; then
    # memcheck with the timed choice of convolution algorithms (which runs every path), racecheck with
    # the deterministic choice and again with each of lpc's kernels that share memory between threads;
    # then the three-layer cifar32 decoder, whose activation between its wide layers is channel-last
    # (timed auto with tf32; nhwc with fp32, where cuDNN runs CUDA-core engines; lpc's channel-last
    # implicit GEMM, whose blocks reuse their k-tile stages for the output tile)
    for run in "memcheck false auto fashion28 fp32" "racecheck true auto fashion28 fp32" \
        "racecheck true implicit fashion28 fp32" "racecheck true direct fashion28 fp32" \
        "racecheck true nhwc fashion28 fp32" "memcheck false auto cifar32 tf32" "racecheck true nhwc cifar32 fp32" \
        "racecheck true implicit_nhwc cifar32 tf32"; do
        read -r tool det algo model math <<<"$run"
        log="$OUT/sanitizer_${tool}_${algo}_$model.log"
        compute-sanitizer --tool "$tool" --error-exitcode 3 "$LPC" bench --bench_model "$model" --batch_size 16 \
            --langevin_steps 3 --bench_repeats 1 --bench_warmup 0 --device cuda --deterministic "$det" \
            --conv_algo "$algo" --math "$math" >"$log" 2>&1
        rc=$?
        echo "$tool (conv_algo $algo, $model, $math): exit $rc"
        [ "$rc" = 0 ] || gpu_rc=1
        tail -2 "$log"
    done
    # training with graphs and sample grids between replays (a grid's shapes may grow the workspace
    # after the chain was captured), on a small fixture in the IDX format
    fixture="$OUT/fixture"
    mkdir -p "$fixture"
    python3 - "$fixture" <<'PY'
import gzip, os, random, struct, sys
n, rng = 256, random.Random(1)
with gzip.open(os.path.join(sys.argv[1], "train-images-idx3-ubyte.gz"), "wb") as f:
    f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(rng.randrange(256) for _ in range(n * 784)))
with gzip.open(os.path.join(sys.argv[1], "train-labels-idx1-ubyte.gz"), "wb") as f:
    f.write(struct.pack(">II", 0x801, n) + bytes(rng.randrange(10) for _ in range(n)))
PY
    compute-sanitizer --tool memcheck --error-exitcode 3 "$LPC" train --data_path "$fixture" --device cuda \
        --batch_size 32 --iters 12 --langevin_steps 3 --sample_every 4 --checkpoint_every 0 --deterministic false \
        --run_dir "$OUT/fixture/run" >"$OUT/sanitizer_train.log" 2>&1
    rc=$?
    echo "memcheck (training with sample grids): exit $rc"
    [ "$rc" = 0 ] || gpu_rc=1
    tail -2 "$OUT/sanitizer_train.log"
    rm -rf "$fixture"
fi
fi
[ "$PART" = checks ] && exit $gpu_rc

echo "== benchmarks: lpc and the PyTorch twin (bench/reference/lpc_torch.py)"
: >"$OUT/bench.jsonl"
HERE=$(dirname "$0")
rows=("cifar32 64" "cifar32 256" "celeba64 64" "celeba64 256")
[ "$PART" = quick ] && rows=("cifar32 64")
[ -d "$HERE/reference" ] || HERE=$(dirname "$(realpath "$0")")
for row in "${rows[@]}"; do
    set -- $row
    for math in fp32 tf32; do
        "$LPC" bench --bench_model "$1" --batch_size "$2" --langevin_steps 20 --math $math --deterministic false \
            --device cuda --bench_repeats 5 --bench_warmup 3 2>&1 | tee -a "$OUT/bench.jsonl"
    done
    for mode in eager graph; do
        train=; [ "$row" = "cifar32 64" ] && [ $mode = eager ] && train=--train
        LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH python3 "$HERE/reference/lpc_torch.py" --model "$1" --batch "$2" --T 20 --mode $mode --math tf32 $train \
            2>&1 | tee -a "$OUT/bench.jsonl"
    done
done
python3 "$HERE/table.py" "$OUT/bench.jsonl" | tee "$OUT/table.md"
exit $gpu_rc
