#!/usr/bin/env python3
"""Side-by-side table of `lpc bench` and the PyTorch twin from one bench.jsonl (bench/device.sh):
Langevin steps/s per model and batch, the ratio to the PyTorch + CUDA graph figure, and TFLOP/s."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
best = {}
for r in rows:
    key = (r["bench"], r["model"], r["batch"], r["device"], r["math"])
    best[key] = r
print("| model | batch | lpc fp32 | lpc tf32 | PyTorch eager | PyTorch + graph | lpc best / graph | lpc TFLOP/s |")
print("|---|---|---|---|---|---|---|---|")
for model, batch in sorted({(r["model"], r["batch"]) for r in rows if r["bench"] == "langevin"}):
    get = lambda dev, math: best.get(("langevin", model, batch, dev, math), {}).get("langevin_steps_per_s")
    f32, t32 = get("cuda", "fp32"), get("cuda", "tf32")
    eager, graph = get("torch-eager", "tf32"), get("torch-graph", "tf32")
    lpc_best = max(v for v in (f32, t32) if v) if (f32 or t32) else None
    tflops = max((best.get(("langevin", model, batch, "cuda", m), {}).get("tflops") or 0) for m in ("fp32", "tf32"))
    fmt = lambda v: f"{v:,.0f}" if v else "-"
    ratio = f"{lpc_best / graph:.2f}x" if lpc_best and graph else "-"
    print(f"| {model} | {batch} | {fmt(f32)} | {fmt(t32)} | {fmt(eager)} | {fmt(graph)} | {ratio} | {tflops:.1f} |")
train = {(r["device"], r["math"]): r["iters_per_s"] for r in rows if r["bench"] == "train" and r["model"] == "cifar32" and r["batch"] == 64}
if train:
    print()
    print("| training, cifar32, batch 64, T 20 | iterations/s |")
    print("|---|---|")
    for (dev, math), v in sorted(train.items()):
        print(f"| {dev} {math} | {v:.1f} |")
    torch_eager = train.get(("torch-eager", "tf32"))
    lpc = max((v for (d, m), v in train.items() if d == "cuda"), default=None)
    if torch_eager and lpc:
        print(f"| lpc / PyTorch eager | {lpc / torch_eager:.1f}x |")
