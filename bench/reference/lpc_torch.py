#!/usr/bin/env python3
"""The PyTorch twin of lpc (SPEC.md sections 1, 2.1 and 8): the same decoder and encoder, the
preconditioned Langevin chain with noise, the theta-gradient over the chain, the Jeffreys objective and
Adam, measured the way `lpc bench` measures, in eager mode and with the chain captured as a CUDA graph.
Prints JSON lines with the same fields as `lpc bench`. With --check it instead recomputes a logged
loss of an lpc run from its checkpoint (bench/reference/check_numerics.sh).

    python3 bench/reference/lpc_torch.py --model cifar32 --batch 64 --T 20 --mode graph --math tf32
"""
import argparse
import json
import math
import statistics

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = {  # SPEC.md section 8
    "fashion28": dict(c=1, size=28, channels=[32, 64], latent=16),
    "cifar32": dict(c=3, size=32, channels=[32, 64, 128], latent=64),
    "celeba64": dict(c=3, size=64, channels=[32, 64, 128, 256], latent=128),
}


class Decoder(nn.Module):
    def __init__(self, c, size, channels, latent):
        super().__init__()
        k = len(channels)
        self.top, self.h0 = channels[-1], size >> k
        self.fc = nn.Linear(latent, self.top * self.h0 * self.h0)
        outs = list(reversed(channels[:-1])) + [c]
        ins = list(reversed(channels))
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(i, o, 4, 2, 1) for i, o in zip(ins, outs))
        self.log_sigma = nn.Parameter(torch.tensor(math.log(0.1)))

    def forward(self, z):
        h = F.relu(self.fc(z)).view(-1, self.top, self.h0, self.h0)
        for i, d in enumerate(self.deconvs):
            h = d(h)
            if i + 1 < len(self.deconvs):
                h = F.relu(h)
        return h


class Encoder(nn.Module):
    def __init__(self, c, size, channels, latent):
        super().__init__()
        ins = [c] + channels[:-1]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 4, 2, 1) for i, o in zip(ins, channels))
        self.fc = nn.Linear(channels[-1] * (size >> len(channels)) ** 2, 2 * latent)

    def forward(self, x):
        for conv in self.convs:
            x = F.relu(conv(x))
        m, lv = self.fc(x.flatten(1)).chunk(2, dim=1)
        return m, lv.clamp(-12.0, 6.0)


def log_joint(dec, x, z):
    """log p(x|z) + log N(z; 0, I) per sample (Gaussian likelihood, learned log sigma)."""
    mu = dec(z)
    ls = dec.log_sigma
    lik = (-0.5 * ((x - mu) * torch.exp(-ls)) ** 2 - ls - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
    prior = (-0.5 * z * z - 0.5 * math.log(2 * math.pi)).sum(1)
    return lik + prior


def langevin_step(dec, x, z, v, xi, t, gamma=0.05, beta=0.99, eps=1e-8):
    z = z.detach().requires_grad_(True)
    g, = torch.autograd.grad(log_joint(dec, x, z).sum(), z)
    v = beta * v + (1 - beta) * g * g
    G = 1.0 / (torch.sqrt(v / (1 - beta ** t)) + eps)
    return (z + gamma * G * g + torch.sqrt(2 * gamma * G) * xi).detach(), v


def chain(dec, x, z, noise, T):
    v = torch.zeros_like(z)
    for t in range(1, T + 1):
        z, v = langevin_step(dec, x, z, v, noise[t - 1], t)
    return z


def train_step(dec, enc, opt_dec, opt_enc, x, T):
    """One LPC iteration: warm start, T steps with the theta-gradient over all states, Jeffreys, Adam."""
    m, lv = enc(x)
    eps = torch.randn_like(m)
    z0 = m + torch.exp(0.5 * lv) * eps
    z = z0.detach().requires_grad_(True)
    v = torch.zeros_like(z)
    opt_dec.zero_grad(set_to_none=False)
    opt_enc.zero_grad(set_to_none=False)
    zs, zq, g1 = torch.zeros_like(z), torch.zeros_like(z), None
    for t in range(1, T + 2):
        lp = log_joint(dec, x, z)
        keep = t >= 2
        g, = torch.autograd.grad(lp.sum() / (x.shape[0] * T) if keep else lp.sum(), z, retain_graph=keep)
        if keep:  # theta-gradient at z_{t-1}, one of the T kept states (z_1 .. z_T)
            (-lp.sum() / (x.shape[0] * T)).backward()
            g = g * x.shape[0] * T
        if t == 1:
            g1 = g
        if t == T + 1:
            break
        v = 0.99 * v + 0.01 * g * g
        G = 1.0 / (torch.sqrt(v / (1 - 0.99 ** t)) + 1e-8)
        z = (z + 0.05 * G * g + torch.sqrt(0.1 * G) * torch.randn_like(z)).detach().requires_grad_(True)
        zs, zq = zs + z.detach(), zq + z.detach() ** 2
    var = torch.exp(lv)
    fwd = (0.5 * lv + 0.5 * (zq - 2 * m * zs + T * m * m) / (T * var)).sum(1).mean()
    logq = (-0.5 * lv - 0.5 * eps * eps).sum(1)
    rev = (logq - (g1.detach() * z0).sum(1)).mean()  # grad_z of -log p(x, z0) is -g1
    (fwd + rev).backward()
    opt_dec.step()
    opt_enc.step()


def timed(fn, repeats, warmup):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    out = []
    for r in range(warmup + repeats):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        if r >= warmup:
            out.append(start.elapsed_time(end) / 1e3)
    return sorted(out)


def report(what, args, unit, units, times, extra=None):
    med = statistics.median(times)
    row = {"bench": what, "model": args.model, "device": "torch-" + args.mode, "math": args.math,
           "batch": args.batch, "T": args.T, unit: units / med, unit + "_min": units / times[-1],
           unit + "_max": units / times[0], "seconds_median": med, "repeats": len(times)}
    row.update(extra or {})
    print(json.dumps(row), flush=True)


def read_idx_images(path, count):
    """The first count images of an IDX file (gzipped or not), scaled to [-1, 1] as lpc does."""
    import gzip
    import struct
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 0x803, path
        data = f.read(count * rows * cols)
    x = torch.frombuffer(bytearray(data), dtype=torch.uint8).float().view(count, 1, rows, cols)
    return x / 127.5 - 1.0


def check_numerics(args):
    """Loads an lpc checkpoint (model.safetensors and its config) and computes, with this file's model
    and chain, the mean log p(x, z_T) of the first `limit` training images from the encoder mean with a
    noise-free chain: the `log_p_x_zT` lpc logs for the step after that checkpoint."""
    import configparser
    from safetensors import safe_open
    path = args.check + "/model.safetensors"
    with safe_open(path, framework="pt") as f:
        cfg = configparser.ConfigParser()
        cfg.read_string(f.metadata()["config"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    get = lambda key: next(cfg[s][key] for s in cfg.sections() if key in cfg[s])
    channels = [int(c) for c in get("channels").split(",")]
    spec = dict(c=1, size=28, channels=channels, latent=int(get("latent_dim")))
    assert get("activation") == "relu" and get("likelihood") == "gaussian" and get("noise") == "false"
    assert get("init") == "encoder_mean"
    dec, enc = Decoder(**spec).double(), Encoder(**spec).double()
    import re
    # lpc's names (decoder.deconv1.weight, encoder.conv2.bias, ...) to this file's module names
    rename = lambda k: re.sub(r"(deconv|conv)(\d+)", lambda m: f"{m.group(1)}s.{int(m.group(2)) - 1}", k)
    part = lambda net: {rename(k.split(".", 1)[1]): v.double() for k, v in tensors.items() if k.startswith(net + ".")}
    dec_state, enc_state = part("decoder"), part("encoder")
    dec_state.setdefault("log_sigma", torch.tensor(math.log(float(get("sigma"))), dtype=torch.float64))
    dec.load_state_dict(dec_state)
    enc.load_state_dict(enc_state)
    limit = int(get("limit"))
    x = read_idx_images(args.data, limit).double()
    with torch.no_grad():
        m, _ = enc(x)
    T, gamma = int(get("langevin_steps")), float(get("langevin_step_size"))
    beta, eps, precond = float(get("precond_beta")), float(get("precond_eps")), get("precond") == "true"
    z, v = m.clone(), torch.zeros_like(m)
    for t in range(1, T + 1):
        zr = z.detach().requires_grad_(True)
        g, = torch.autograd.grad(log_joint(dec, x, zr).sum(), zr)
        if precond:
            v = beta * v + (1 - beta) * g * g
            G = 1.0 / (torch.sqrt(v / (1 - beta ** t)) + eps)
        else:
            G = torch.ones_like(g)
        z = (z + gamma * G * g).detach()
    with torch.no_grad():
        value = log_joint(dec, x, z).mean().item()
    print(json.dumps({"check": "log_p_x_zT", "torch_float64": value}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cifar32", choices=MODELS)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--T", type=int, default=20)
    ap.add_argument("--mode", default="graph", choices=["eager", "graph"])
    ap.add_argument("--math", default="tf32", choices=["fp32", "tf32"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--train", action="store_true", help="also time training iterations (eager)")
    ap.add_argument("--check", metavar="CHECKPOINT_DIR", help="numerics check against an lpc checkpoint (see check_numerics.sh)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
    args = ap.parse_args()
    if args.check:
        check_numerics(args)
        return
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.math == "tf32"
    torch.backends.cudnn.benchmark = True
    spec = MODELS[args.model]
    dev = torch.device("cuda")
    torch.manual_seed(0)
    dec, enc = Decoder(**spec).to(dev), Encoder(**spec).to(dev)
    x = torch.rand(args.batch, spec["c"], spec["size"], spec["size"], device=dev) * 2 - 1
    z0 = torch.randn(args.batch, spec["latent"], device=dev)
    noise = torch.randn(args.T, args.batch, spec["latent"], device=dev)
    for p in dec.parameters():
        p.requires_grad_(False)

    if args.mode == "eager":
        run = lambda: chain(dec, x, z0, noise, args.T)
    else:
        static_z = z0.clone()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                chain(dec, x, static_z, noise, args.T)
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = chain(dec, x, static_z, noise, args.T)
        run = graph.replay
    times = timed(run, args.repeats, args.warmup)
    report("langevin", args, "langevin_steps_per_s", args.T, times)
    report("latent_samples", args, "latent_sample_steps_per_s", args.T * args.batch, times)

    if args.train:
        for p in dec.parameters():
            p.requires_grad_(True)
        opt_dec = torch.optim.Adam(dec.parameters(), lr=1e-3)
        opt_enc = torch.optim.Adam(enc.parameters(), lr=1e-3)
        times = timed(lambda: train_step(dec, enc, opt_dec, opt_enc, x, args.T), args.repeats, args.warmup)
        args.mode = "eager"
        report("train", args, "iters_per_s", 1, times)


if __name__ == "__main__":
    main()
