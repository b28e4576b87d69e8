"""The reference experiment in PyTorch: the baseline `cargo xtask bench` times vgrad against.

Same network (784 -> layers-1 hidden of `width` -> 10), init (Glorot uniform weights, zero
biases), data (the vendored MNIST, first 5,000 training images held out, batches drawn
without replacement and reshuffled every epoch), loss (mean softmax cross-entropy),
optimizer (Adam 1e-3, PyTorch's default implementation or `fused=True`) and logging
(every `log_every` steps: loss, batch accuracy and each layer's mean |dC/dW|) as
`vgrad train`. One thread, like vgrad.

  python pytorch_baseline.py single   --activation relu [--fused] [--steps N] ...
  python pytorch_baseline.py ensemble --members 10 [--fused] ...   # K models as batched tensors
  python pytorch_baseline.py runs     --runs sigmoid:0,relu:3 ...  # several runs, one after another
  python pytorch_baseline.py single   --norm batch|layer --residual --optimizer sgd|momentum:0.9 --lr 0.1
  python pytorch_baseline.py peak     --size 1024                      # the f32 GEMM rate, GFLOP/s

Prints one JSON object per run on stdout: steps, train_s (the training loop, data loading
and evaluation excluded), steps_per_s, us_per_member_step, final loss, test accuracy.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

VALIDATION = 5000


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load_mnist(folder):
    def read(stem, kind):
        return read_idx(os.path.join(folder, f"{stem}-{kind}.gz"))

    train_x = read("train-images", "idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255.0
    train_y = read("train-labels", "idx1-ubyte").astype(np.int64)
    test_x = read("t10k-images", "idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255.0
    test_y = read("t10k-labels", "idx1-ubyte").astype(np.int64)
    return (
        torch.from_numpy(train_x[VALIDATION:]),
        torch.from_numpy(train_y[VALIDATION:]),
        torch.from_numpy(test_x),
        torch.from_numpy(test_y),
    )


class Batches:
    """Without replacement, reshuffled every epoch; a batch crossing an epoch's end tops up
    from the next one (TensorFlow's MNIST helper)."""

    def __init__(self, n, seed):
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(n)
        self.next = 0

    def take(self, b):
        out = []
        while b > 0:
            if self.next == len(self.order):
                self.order = self.rng.permutation(len(self.order))
                self.next = 0
            k = min(b, len(self.order) - self.next)
            out.append(self.order[self.next : self.next + k])
            self.next += k
            b -= k
        return torch.from_numpy(np.concatenate(out))


def activation_fn(name):
    if name == "sigmoid":
        return torch.sigmoid
    if name == "relu":
        return F.relu
    if name.startswith("leaky-relu"):
        slope = float(name.split(":")[1]) if ":" in name else 0.01
        return lambda x: F.leaky_relu(x, slope)
    raise SystemExit(f"unknown activation {name!r}")


def dims(args):
    sizes = [784] + [args.width] * (args.layers - 1) + [10]
    return list(zip(sizes[:-1], sizes[1:]))


def glorot(k, fan_in, fan_out, gen):
    limit = (6.0 / (fan_in + fan_out)) ** 0.5
    return (torch.rand(k, fan_in, fan_out, generator=gen) * 2 - 1) * limit


def optimizer(args, params):
    """vgrad's --optimizer: adam, sgd or momentum:<beta> (no dampening, no Nesterov)."""
    fused = args.fused or None
    if args.optimizer == "adam":
        return torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, fused=fused)
    if args.optimizer == "sgd":
        return torch.optim.SGD(params, lr=args.lr, fused=fused)
    if args.optimizer.startswith("momentum:"):
        beta = float(args.optimizer.split(":")[1])
        return torch.optim.SGD(params, lr=args.lr, momentum=beta, fused=fused)
    raise SystemExit(f"unknown optimizer {args.optimizer!r}")


def normalise(args, z, gain, shift, running):
    """vgrad's --norm on a hidden layer's z of shape (k, batch, width): batch norm over the
    batch (PyTorch's own kernel for one member), layer norm over the units."""
    k = z.shape[0]
    if args.norm == "batch":
        if k == 1:
            mean, var = running
            return F.batch_norm(z[0], mean, var, gain[0, 0], shift[0, 0], training=True, momentum=0.1, eps=1e-5).unsqueeze(0)
        mu = z.mean(dim=1, keepdim=True)
        var = z.var(dim=1, unbiased=False, keepdim=True)
        return (z - mu) / torch.sqrt(var + 1e-5) * gain + shift
    if args.norm == "layer":
        if k == 1:
            return F.layer_norm(z[0], z.shape[-1:], gain[0, 0], shift[0, 0], eps=1e-5).unsqueeze(0)
        mu = z.mean(dim=-1, keepdim=True)
        var = z.var(dim=-1, unbiased=False, keepdim=True)
        return (z - mu) / torch.sqrt(var + 1e-5) * gain + shift
    return z


def train(args, data, activation, seeds):
    """Trains len(seeds) members together: one plain model (K = 1, nn.Linear-style
    matmuls) or K models as batched tensors (baddbmm). --norm, --residual and --optimizer
    as vgrad's flags of the same names."""
    train_x, train_y, test_x, test_y = data
    k = len(seeds)
    gen = torch.Generator().manual_seed(seeds[0])
    weights = [torch.nn.Parameter(glorot(k, i, o, gen)) for i, o in dims(args)]
    biases = [torch.nn.Parameter(torch.zeros(k, 1, o)) for _, o in dims(args)]
    hidden = len(weights) - 1
    normed = args.norm != "none"
    gains = [torch.nn.Parameter(torch.ones(k, 1, args.width)) for _ in range(hidden if normed else 0)]
    shifts = [torch.nn.Parameter(torch.zeros(k, 1, args.width)) for _ in range(hidden if normed else 0)]
    running = [(torch.zeros(args.width), torch.ones(args.width)) for _ in range(hidden)]
    params = [p for pair in zip(weights, biases) for p in pair] + gains + shifts
    opt = optimizer(args, params)
    act = activation_fn(activation)
    batches = [Batches(len(train_x), s) for s in seeds]

    def forward(x):
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = torch.baddbmm(b, x, w) if k > 1 else torch.addmm(b[0], x[0], w[0]).unsqueeze(0)
            if i + 1 == len(weights):
                return z
            if normed:
                z = normalise(args, z, gains[i], shifts[i], running[i])
            h = act(z)
            # vgrad's --residual: hidden layers 2..L-1 add their input.
            x = x + h if args.residual and 0 < i else h
        return x

    b = args.batch_size
    loss_value = float("nan")
    start = time.perf_counter()
    for step in range(args.steps):
        idx = torch.stack([bt.take(b) for bt in batches])
        x, y = train_x[idx], train_y[idx]
        logits = forward(x)
        loss = F.cross_entropy(logits.reshape(k * b, 10), y.reshape(-1), reduction="sum") / b
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if step % args.log_every == 0:
            loss_value = loss.item() / k
            _ = (logits.argmax(-1) == y).float().mean().item()
            _ = [w.grad.abs().mean(dim=(1, 2)).tolist() for w in weights]
        opt.step()
    train_s = time.perf_counter() - start
    with torch.no_grad():
        x = test_x.unsqueeze(0).expand(k, -1, -1)
        acc = (forward(x).argmax(-1) == test_y).float().mean().item()
    return {
        "activation": activation,
        "members": k,
        "steps": args.steps,
        "train_s": train_s,
        "steps_per_s": args.steps / train_s,
        "us_per_member_step": 1e6 * train_s / args.steps / k,
        "loss": loss_value,
        "test_acc": acc,
        "fused": bool(args.fused),
        "torch": torch.__version__,
    }


def peak(n):
    """The f32 GEMM rate of an n x n x n product with PyTorch's kernels (best of 5)."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return {"size": n, "gflops": 2 * n**3 / best / 1e9, "torch": torch.__version__}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["single", "ensemble", "runs", "peak"])
    p.add_argument("--activation", default="relu")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--runs", default="", help="activation:seed,... for mode runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--batch-size", type=int, default=30)
    p.add_argument("--width", type=int, default=10)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--log-every", type=int, default=200)
    p.add_argument("--fused", action="store_true", help="the optimizer's fused=True")
    p.add_argument("--optimizer", default="adam", help="adam, sgd or momentum:<beta>")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--norm", default="none", choices=["none", "batch", "layer"])
    p.add_argument("--residual", action="store_true")
    p.add_argument("--size", type=int, default=1024, help="matrix size of mode peak")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.mode == "peak":
        print(json.dumps(peak(args.size)), flush=True)
        return
    data = load_mnist(args.data)
    if args.mode == "single":
        jobs = [(args.activation, [args.seed])]
    elif args.mode == "ensemble":
        jobs = [(args.activation, list(range(args.seed, args.seed + args.members)))]
    else:
        jobs = [(a, [int(s)]) for a, s in (r.rsplit(":", 1) for r in args.runs.split(",") if r)]
    for activation, seeds in jobs:
        print(json.dumps(train(args, data, activation, seeds)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
