#!/usr/bin/env bash
# Training end to end on Fashion-MNIST (issue "trainer"):
#  - determinism: the same seed gives a bitwise-identical metrics.jsonl, for lpc and vae;
#  - resume: N steps, stop, --resume to 2N equals 2N steps straight (metrics and weights bitwise);
#  - Ctrl-C writes a checkpoint and exits 130, and the run resumes from it;
#  - the NaN/Inf guard names the step, the term and the key to change, keeps the last good state in a
#    new folder and leaves the earlier checkpoint untouched;
#  - learning: 300 steps of lpc lower -log p(x, z_T) by at least 60%, and the vae's loss by 60% too.
# usage: test_train.sh LPC_BINARY
set -u
LPC=$(realpath "$1")
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    echo "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
    exit 77
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fails=0 checks=0
expect() {
    local what=$1; shift
    checks=$((checks + 1))
    if ! "$@"; then echo "FAIL: $what"; fails=$((fails + 1)); fi
}
# same_tensors A B: the tensor data of two safetensors files is bitwise equal (their headers hold the
# run's own config, run_dir included, so the files as a whole differ)
same_tensors() {
    local ha hb
    ha=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    hb=$(od -An -t u8 -N 8 "$2" | tr -d ' ')
    cmp -s <(tail -c +$((9 + ha)) "$1") <(tail -c +$((9 + hb)) "$2")
}
small=(--limit 1024 --batch_size 32 --channels 8,16 --latent_dim 8 --langevin_steps 5 --log_every 1 --device cpu
       --sample_every 0)

# determinism
for algo in lpc vae; do
    "$LPC" train "${small[@]}" --algo $algo --iters 12 --run_dir ${algo}_a >/dev/null 2>&1
    "$LPC" train "${small[@]}" --algo $algo --iters 12 --run_dir ${algo}_b >/dev/null 2>&1
    expect "$algo: 12 logged steps" test "$(wc -l <${algo}_a/metrics.jsonl)" -eq 12
    expect "$algo: same seed, bitwise-identical metrics.jsonl" cmp -s ${algo}_a/metrics.jsonl ${algo}_b/metrics.jsonl
    expect "$algo: same seed, bitwise-identical weights" same_tensors ${algo}_a/checkpoint/model.safetensors ${algo}_b/checkpoint/model.safetensors
done
"$LPC" train "${small[@]}" --iters 12 --seed 2 --run_dir lpc_seed2 >/dev/null 2>&1
expect "another seed gives other losses" bash -c "! cmp -s lpc_a/metrics.jsonl lpc_seed2/metrics.jsonl"
differ_tensors() { ! same_tensors "$1" "$2"; }
expect "another seed gives other weights" differ_tensors lpc_a/checkpoint/model.safetensors lpc_seed2/checkpoint/model.safetensors

# resume: 6 steps (crossing an epoch boundary of 32 batches needs more; the order is in the state),
# then 6 more, equals 12 straight
for algo in lpc vae; do
    "$LPC" train "${small[@]}" --algo $algo --iters 6 --run_dir ${algo}_r >/dev/null 2>&1
    "$LPC" train --resume ${algo}_r --iters 12 >/dev/null 2>&1
    expect "$algo: 6 + resume + 6 gives the metrics of 12 straight" cmp -s ${algo}_a/metrics.jsonl ${algo}_r/metrics.jsonl
    expect "$algo: and the same weights" same_tensors ${algo}_a/checkpoint/model.safetensors ${algo}_r/checkpoint/model.safetensors
done
# across an epoch boundary (1024 / 32 = 32 batches per epoch)
"$LPC" train "${small[@]}" --limit 256 --iters 20 --run_dir epoch_a >/dev/null 2>&1
"$LPC" train "${small[@]}" --limit 256 --iters 5 --run_dir epoch_r >/dev/null 2>&1
"$LPC" train --resume epoch_r --iters 20 >/dev/null 2>&1
expect "resume across epochs gives the metrics of a straight run" cmp -s epoch_a/metrics.jsonl epoch_r/metrics.jsonl

# Ctrl-C
"$LPC" train "${small[@]}" --iters 100000 --run_dir interrupted >interrupted.txt 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s interrupted/metrics.jsonl ] && break; sleep 0.1; done
sleep 0.5
kill -INT $pid
wait $pid
rc=$?
expect "Ctrl-C exits with 130 (got $rc)" test $rc -eq 130
expect "Ctrl-C writes a checkpoint" test -s interrupted/checkpoint/state.safetensors
expect "Ctrl-C says how to resume" grep -q "lpc train --resume interrupted" interrupted.txt
steps=$(wc -l <interrupted/metrics.jsonl)
"$LPC" train --resume interrupted --iters $((steps + 2)) >/dev/null 2>&1
expect "the interrupted run resumes" test "$(wc -l <interrupted/metrics.jsonl)" -eq $((steps + 2))

# NaN/Inf guard: a huge step without preconditioning diverges
"$LPC" train "${small[@]}" --iters 3 --run_dir diverge >/dev/null 2>&1
cp diverge/checkpoint/model.safetensors good.safetensors
"$LPC" train --resume diverge --iters 50 >/dev/null 2>diverge.txt # same settings: must not fail
expect "the resumed healthy run succeeds" test $? -eq 0
"$LPC" train "${small[@]}" --iters 50 --langevin_step_size 50 --precond false --run_dir nan >/dev/null 2>nan.txt
rc=$?
expect "divergence exits 2 (got $rc)" test $rc -eq 2
expect "the message names the step, the term and the key" grep -q "became.*at step [0-9]*.*langevin_step_size" nan.txt
expect "the message is one line" test "$(wc -l <nan.txt)" -eq 1
expect "the last good state is kept" test -s nan/checkpoint_before_failure/model.safetensors

# learning on real data
"$LPC" train --iters 300 --log_every 1 --sample_every 0 --checkpoint_every 0 --device cpu --run_dir learn_lpc >/dev/null 2>&1
"$LPC" train --algo vae --iters 300 --log_every 1 --sample_every 0 --checkpoint_every 0 --device cpu --run_dir learn_vae >/dev/null 2>&1
loss_drop() { # mean loss of the first 10 and the last 25 logged steps; succeeds if it fell by 60%
    awk -F'"loss":' '{ split($2, a, ","); v[NR] = a[1] } END {
        for (i = 1; i <= 10; i++) f += v[i] / 10; for (i = NR - 24; i <= NR; i++) l += v[i] / 25;
        printf "%s: first 10 steps %.1f, last 25 steps %.1f (%.0f%% lower)\n", FILENAME, f, l, 100 * (1 - l / f);
        exit !(l < 0.4 * f) }' "$1"
}
expect "lpc learns: -log p(x, z_T) falls by 60% in 300 steps" loss_drop learn_lpc/metrics.jsonl
expect "vae learns: -ELBO falls by 60% in 300 steps" loss_drop learn_vae/metrics.jsonl

echo "test_train: $checks checks, $fails failed"
[ $fails -eq 0 ]
