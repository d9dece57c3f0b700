#!/usr/bin/env bash
# Command-line behaviour (issues "foundation" and "trainer"): bad keys, values, ranges and INI syntax
# exit 2 with one line naming the key or line; a missing data path, a corrupt checkpoint and an existing
# run directory are refused; --help lists every key of SPEC.md section 6.
# usage: test_cli.sh LPC_BINARY
set -u
LPC=$(realpath "$1")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fails=0 checks=0

# expect_error PATTERN -- ARGS...: exit code 2, exactly one line on stderr, matching PATTERN
expect_error() {
    local pattern=$1; shift; shift
    checks=$((checks + 1))
    "$LPC" "$@" >out.txt 2>err.txt
    local rc=$? lines
    lines=$(wc -l <err.txt)
    if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$pattern" err.txt; then
        echo "FAIL: lpc $*: expected exit 2 and one line matching '$pattern'; got exit $rc, $lines line(s):"
        cat err.txt
        fails=$((fails + 1))
    fi
}

expect() { # expect DESCRIPTION COMMAND...
    local what=$1; shift
    checks=$((checks + 1))
    if ! "$@"; then echo "FAIL: $what"; fails=$((fails + 1)); fi
}

# configuration keys and values
expect_error "unknown key 'langevin_step'.*did you mean 'langevin_steps'" -- train --langevin_step 5
expect_error "batch_size: 'abc' is not an integer" -- train --batch_size abc
expect_error "precond_beta = 1.5 is out of range" -- train --precond_beta 1.5
expect_error "activation: 'tanh' is not allowed (allowed: relu|leaky_relu|silu)" -- train --activation=tanh
expect_error "noise: 'maybe' is not a boolean" -- train --noise maybe
expect_error "channels: 'a,b' is not a comma-separated list" -- train --channels a,b
expect_error "encoder_objective = jeffreys: init = prior builds no encoder" -- train --init prior --encoder_objective jeffreys
expect_error "theta_samples = 30 exceeds langevin_steps = 10" -- train --theta_samples 30 --langevin_steps 10
expect_error "use at most 2 values in channels" -- train --channels 8,16,32 --iters 1 --run_dir r_bad_channels
expect_error "needs a value" -- train --lr
expect_error "unknown command 'trian'" -- trian

printf '[model]\nlatent_dim 16\n' >syntax.ini
expect_error "syntax.ini:2: not valid INI syntax" -- train --config syntax.ini
printf '[train]\nlr = 0.01\nlearning_rate = 1\n' >unknown.ini
expect_error "unknown.ini:3: unknown key 'learning_rate'" -- train --config unknown.ini
printf '[model]\nlr = 0.01\n' >section.ini
expect_error "section.ini:2: key 'lr' belongs in section \[train\]" -- train --config section.ini
printf '[langevin]\nlangevin_steps = 0\n' >range.ini
expect_error "range.ini:2: langevin_steps = 0 is out of range" -- train --config range.ini
expect_error "missing.ini: cannot open the config file" -- train --config missing.ini

# files
expect_error "nonexistent: data folder not found" -- data --dataset mnist --data_path "$WORK/nonexistent"
expect_error "no checkpoint here" -- sample --checkpoint "$WORK/nothing" --out s.png
mkdir -p corrupt && head -c 100 /dev/urandom >corrupt/model.safetensors
expect_error "corrupt/model.safetensors" -- sample --checkpoint corrupt --out s.png
expect_error "--out PATH is required" -- sample --checkpoint corrupt

# --help lists every key of SPEC.md section 6
"$LPC" --help >help.txt
for key in dataset data_path split limit image_size crop flip latent_dim channels activation likelihood sigma \
    learn_sigma langevin_steps langevin_step_size precond precond_beta precond_eps noise init theta_samples algo \
    encoder_objective batch_size iters epochs lr lr_encoder weight_decay grad_clip seed device math run_dir \
    log_every sample_every checkpoint_every; do
    expect "--help lists $key" grep -q -- "--$key " help.txt
done
"$LPC" train --help >train_help.txt
expect "lpc train --help shows the langevin keys" grep -q -- "--langevin_step_size" train_help.txt

# lpc bench on the CPU: one JSON line per measurement
"$LPC" bench --bench_model fashion28 --batch_size 4 --langevin_steps 2 --bench_repeats 1 --bench_warmup 0 --device cpu >bench.jsonl 2>/dev/null
expect "lpc bench prints the four measurements" test "$(grep -c '^{"bench":' bench.jsonl)" -eq 4
expect "lpc bench reports Langevin steps/s and TFLOP/s" grep -q '"langevin_steps_per_s":[0-9].*"tflops"' bench.jsonl

# an existing run directory is never overwritten without --resume or --overwrite
if [ -d /usr/share/datasets/fashion-mnist ]; then
    args=(--limit 256 --batch_size 32 --iters 2 --langevin_steps 2 --channels 4,8 --device cpu --run_dir run1)
    expect "a short run succeeds" "$LPC" train "${args[@]}" >/dev/null 2>&1
    cp run1/metrics.jsonl before.jsonl
    expect_error "run1: a run already exists there" -- train "${args[@]}"
    expect "the refused run left metrics.jsonl untouched" cmp -s before.jsonl run1/metrics.jsonl
    expect "--overwrite replaces it" "$LPC" train "${args[@]}" --overwrite >/dev/null 2>&1
    expect_error "--channels cannot change when resuming" -- train --resume run1 --channels 4,16
    expect_error "already at step 2 of 2" -- train --resume run1
    expect "lpc data summarises Fashion-MNIST" bash -c "'$LPC' data --preview p.png | grep -q 'images:  60000' && test -s p.png"
    expect "lpc sample writes a PNG grid" "$LPC" sample --checkpoint run1/checkpoint --n 10 --out g.png
    expect "lpc sample writes an .npz" "$LPC" sample --checkpoint run1/checkpoint --n 5 --out s.npz
    expect "the .npz holds 5 x 28 x 28 x 1 uint8 plus headers" test "$(stat -c %s s.npz)" -eq $((5 * 28 * 28 + 128 + 30 + 9 + 46 + 9 + 22))
    expect "lpc sample writes a folder of PNGs" bash -c "'$LPC' sample --checkpoint run1/checkpoint --n 3 --out folder >/dev/null && test -s folder/000002.png"
    expect "lpc data summarises a folder of images" bash -c "'$LPC' data --dataset folder --data_path folder --image_size 28 --crop 0 --preview f.png | grep -q 'images:  3'"
    expect_error "folder/000000.png: smaller than the crop or image_size" -- data --dataset folder --data_path folder --image_size 32 --crop 0
    # lpc data on fixtures of the other formats: a CIFAR-10 test batch of zeros (labels 0) and a
    # CelebA-style folder (any stb-readable image under a .jpg name) with its partition file
    mkdir -p cifar celeba/img_align_celeba
    dd if=/dev/zero of=cifar/test_batch.bin bs=3073 count=10000 status=none
    expect "lpc data summarises a CIFAR-10 batch" bash -c "'$LPC' data --dataset cifar10 --data_path cifar --split test --preview c.png | grep -q 'images:  10000'"
    for i in 0 1 2; do cp folder/00000$i.png celeba/img_align_celeba/00000$((i + 1)).jpg; done
    printf '000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n' >celeba/list_eval_partition.txt
    expect "lpc data summarises a CelebA-style folder" bash -c "'$LPC' data --dataset celeba --data_path celeba --crop 0 --image_size 16 --preview e.png | grep -q 'images:  2'"
    head -c 3073 /dev/zero >cifar/test_batch.bin
    expect_error "test_batch.bin: 3073 bytes, expected exactly 30730000" -- data --dataset cifar10 --data_path cifar --split test
    expect "lpc eval with the Langevin proposal" bash -c "'$LPC' eval --checkpoint run1/checkpoint --limit 8 --eval_samples 4 --eval_proposal langevin | grep -q '\"proposal\":\"langevin\"'"
    expect "lpc eval prints JSON" bash -c "'$LPC' eval --checkpoint run1/checkpoint --limit 20 --eval_samples 4 | grep -q '\"iwae_bits_per_dim\"'"
else
    echo "skipping the run-directory checks: Fashion-MNIST is not installed"
fi

echo "test_cli: $checks checks, $fails failed"
[ $fails -eq 0 ]
