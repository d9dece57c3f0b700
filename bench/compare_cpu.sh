#!/usr/bin/env bash
# The README's results: LPC (Jeffreys, preconditioned) against the VAE and plain PC on Fashion-MNIST with
# the same architecture, batch size, seed and number of optimiser steps, on the CPU. Trains the three,
# evaluates each on the test set and prints a Markdown table; sample grids go to OUT/*.png.
# Plain PC shares LPC's step size in one row (without the preconditioner it is unstable there, which
# is the robustness the preconditioner buys) and uses a step size at which it is stable in another.
# usage: bench/compare_cpu.sh [LPC_BINARY] [OUT_DIR] [ITERS] [EVAL_LIMIT] [ROWS]
#   ROWS: some of "lpc vae pc pc_small_step" (default: all)
set -euo pipefail
LPC=${1:-build/lpc}
OUT=${2:-runs/compare}
ITERS=${3:-1500}
EVAL_LIMIT=${4:-2000}
ROWS=${5:-"lpc vae pc pc_small_step"}
mkdir -p "$OUT"
common=(--iters "$ITERS" --seed 1 --batch_size 64 --device cpu --sample_every 0 --checkpoint_every 0 --overwrite)
row() { # name, run dir, train options
    case " $ROWS " in *" $1 "*) ;; *) return 0 ;; esac
    local t0 t1
    t0=$(date +%s.%N)
    "$LPC" train "${common[@]}" "${@:3}" --run_dir "$2" >"$2.log" 2>&1
    t1=$(date +%s.%N)
    "$LPC" eval --checkpoint "$2/checkpoint" --limit "$EVAL_LIMIT" --eval_samples 64 >"$2.eval.json"
    "$LPC" sample --checkpoint "$2/checkpoint" --n 64 --out "$OUT/$1_samples.png" >/dev/null
    cp "$(ls "$2"/samples/*.png | tail -1)" "$OUT/$1_reconstructions.png"
    local j
    j=$(cat "$2.eval.json")
    field() { echo "$j" | sed -E "s/.*\"$1\":([-0-9.e+]+).*/\1/"; }
    printf '| %s | %.1f | %.1f | %.3f | %.3f | %.4f | %.0f |\n' "$1" "$(field elbo_nats)" "$(field iwae_nats)" \
        "$(field elbo_bits_per_dim)" "$(field iwae_bits_per_dim)" "$(field recon_mse)" "$(echo "$t1 - $t0" | bc)"
}
[ "${5:-}" ] || echo "| algorithm | test ELBO (nats) | test IWAE, K=64 (nats) | ELBO bits/dim | IWAE bits/dim | recon MSE | train time (s) |"
[ "${5:-}" ] || echo "|---|---|---|---|---|---|---|"
row lpc "$OUT/lpc" --algo lpc
row vae "$OUT/vae" --algo vae
row pc "$OUT/pc" --algo pc
row pc_small_step "$OUT/pc_small_step" --algo pc --langevin_step_size 0.001
