#!/usr/bin/env bash
# The PyTorch twin's numerics against lpc on a tiny config (same weights, same data): lpc trains one step
# and saves a checkpoint; the twin loads those weights from model.safetensors and computes log p(x, z_T)
# of the same images with the same noise-free chain from the encoder mean; lpc, resumed for one more
# step, logs the same quantity. They must agree to 1e-4 relative (lpc computes in float32, the twin in
# float64; 10 chain steps of a 3-layer network in float32 leave errors near 1e-6).
# usage: bench/reference/check_numerics.sh LPC_BINARY FASHION_MNIST_DIR [DEVICE]
set -euo pipefail
LPC=$1
DATA=$2
DEVICE=${3:-cpu}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$LPC" train --data_path "$DATA" --limit 64 --batch_size 64 --channels 8,16 --latent_dim 4 --langevin_steps 10 \
    --noise false --init encoder_mean --encoder_objective forward_kl --learn_sigma false --iters 1 --log_every 1 \
    --device "$DEVICE" --run_dir "$WORK/run" >/dev/null
cp -r "$WORK/run/checkpoint" "$WORK/after_step_1"
"$LPC" train --resume "$WORK/run" --iters 2 >/dev/null
lpc_value=$(sed -n 2p "$WORK/run/metrics.jsonl" | sed -E 's/.*"log_p_x_zT":([-0-9.e+]+).*/\1/')
torch_value=$(python3 "$HERE/lpc_torch.py" --check "$WORK/after_step_1" --data "$DATA/train-images-idx3-ubyte.gz" |
    sed -E 's/.*"torch_float64": ([-0-9.e+]+).*/\1/')
python3 - "$lpc_value" "$torch_value" <<'PY'
import sys
a, b = float(sys.argv[1]), float(sys.argv[2])
rel = abs(a - b) / abs(b)
print(f"log p(x, z_T) after one step: lpc {a:.8g}, PyTorch (float64) {b:.8g}, relative difference {rel:.2e}")
sys.exit(0 if rel < 1e-4 else 1)
PY
