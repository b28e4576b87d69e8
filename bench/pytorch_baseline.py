"""The reference experiment in PyTorch: the baseline `cargo xtask bench` times vgrad against.

Same network (784 -> layers-1 hidden of `width` -> 10), init (Glorot uniform weights, zero
biases), data (the vendored MNIST, first 5,000 training images held out, batches drawn
without replacement and reshuffled every epoch), loss (mean softmax cross-entropy),
optimizer (Adam 1e-3, PyTorch's default implementation or `fused=True`) and logging
(every `log_every` steps: loss, batch accuracy and each layer's mean |dC/dW|) as
`vgrad train`. One thread, like vgrad.

Written as a PyTorch user who cares about speed would write it: the training loop does
no per-step Python work the framework does not need (the data order is one index tensor
sliced per step, the batch one `index_select`, the parameters plain tensors: matrices for
one model, batched tensors and `baddbmm` for K models, no Python loop over members).

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


class Order:
    """Each member's data order: without replacement, reshuffled every epoch, a batch
    crossing an epoch's end topped up from the next (TensorFlow's MNIST helper), from
    numpy's generator seeded with the member's seed. A step slices one index tensor of
    shape (members, batch); a new epoch's permutations are appended once per epoch, so no
    Python work per member happens inside a step."""

    def __init__(self, n, seeds):
        self.n = n
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.stream = self._epoch()
        self.next = 0

    def _epoch(self):
        return torch.from_numpy(np.stack([rng.permutation(self.n) for rng in self.rngs]))

    def take(self, b):
        """The next `b` indices of every member, shape (members, b)."""
        while self.next + b > self.stream.shape[1]:
            self.stream = torch.cat([self.stream[:, self.next :], self._epoch()], dim=1)
            self.next = 0
        idx = self.stream[:, self.next : self.next + b]
        self.next += b
        return idx


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


class Network:
    """The MLP's parameters and forward pass. One model (K = 1) holds plain matrices and
    runs `addmm` with PyTorch's own batch and layer norm kernels, as `nn.Linear` and
    `nn.BatchNorm1d` would; K models hold batched tensors and run `baddbmm`, the norms
    written in tensor ops over the member axis. --norm and --residual as vgrad's flags."""

    def __init__(self, args, k, gen):
        self.k = k
        self.norm = args.norm
        self.residual = args.residual
        # Biases, gains and shifts: (K, 1, units), or (units,) for one model.
        shape = (lambda *s: s) if k > 1 else (lambda *s: s[-1:])
        # Glorot uniform weights drawn for all K members at once from the first seed, zero
        # biases; one model keeps its member's matrices, without the member axis.
        # Each weight is stored as nn.Linear stores it, (out, in), and multiplied through its
        # transpose: MKL's products of these shapes run up to twice as fast that way.
        self.weights = []
        for i, o in dims(args):
            w = glorot(k, i, o, gen).transpose(1, 2).contiguous()
            self.weights.append(torch.nn.Parameter(w if k > 1 else w[0].clone()))
        self.biases = [torch.nn.Parameter(torch.zeros(shape(k, 1, o))) for _, o in dims(args)]
        hidden = len(self.weights) - 1
        normed = args.norm != "none"
        self.gains = [torch.nn.Parameter(torch.ones(shape(k, 1, args.width))) for _ in range(hidden if normed else 0)]
        self.shifts = [torch.nn.Parameter(torch.zeros(shape(k, 1, args.width))) for _ in range(hidden if normed else 0)]
        self.running = [(torch.zeros(args.width), torch.ones(args.width)) for _ in range(hidden)]
        self.product = torch.addmm if k == 1 else torch.baddbmm

    def parameters(self):
        return [p for pair in zip(self.weights, self.biases) for p in pair] + self.gains + self.shifts

    def normalise(self, i, z):
        """vgrad's --norm on hidden layer i's z: batch norm over the batch, layer norm over
        the units."""
        if self.norm == "none":
            return z
        gain, shift = self.gains[i], self.shifts[i]
        if self.k == 1:
            if self.norm == "batch":
                mean, var = self.running[i]
                return F.batch_norm(z, mean, var, gain, shift, training=True, momentum=0.1, eps=1e-5)
            return F.layer_norm(z, z.shape[-1:], gain, shift, eps=1e-5)
        dim = 1 if self.norm == "batch" else -1
        mu = z.mean(dim=dim, keepdim=True)
        var = z.var(dim=dim, unbiased=False, keepdim=True)
        return (z - mu) / torch.sqrt(var + 1e-5) * gain + shift

    def forward(self, x, act):
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = self.product(b, x, w.transpose(-1, -2))
            if i == last:
                return z
            h = act(self.normalise(i, z))
            # vgrad's --residual: hidden layers 2..L-1 add their input.
            x = x + h if self.residual and i > 0 else h
        return x


def train(args, data, activation, seeds):
    """Trains len(seeds) members together (see `Network`) and times the training loop: a
    slice of the data order, one gather of the batch, the forward and backward passes, the
    optimizer's step, and every `log_every` steps the loss, the batch accuracy and each
    layer's mean |dC/dW|."""
    train_x, train_y, test_x, test_y = data
    k = len(seeds)
    net = Network(args, k, torch.Generator().manual_seed(seeds[0]))
    opt = optimizer(args, net.parameters())
    act = activation_fn(activation)
    order = Order(len(train_x), seeds)
    b = args.batch_size
    # The members' losses are summed, so each member's gradient is that of its own mean loss.
    scale = 1.0 / b
    loss_value = float("nan")
    start = time.perf_counter()
    for step in range(args.steps):
        idx = order.take(b).reshape(-1)
        x = train_x.index_select(0, idx)
        y = train_y.index_select(0, idx)
        if k > 1:
            x = x.view(k, b, 784)
        logits = net.forward(x, act)
        loss = F.cross_entropy(logits.reshape(k * b, 10), y, reduction="sum") * scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if step % args.log_every == 0:
            loss_value = loss.item() / k
            _ = (logits.reshape(k * b, 10).argmax(-1) == y).float().mean().item()
            _ = [w.grad.abs().reshape(k, -1).mean(dim=1).tolist() for w in net.weights]
        opt.step()
    train_s = time.perf_counter() - start
    with torch.no_grad():
        x = test_x if k == 1 else test_x.unsqueeze(0).expand(k, -1, -1)
        acc = (net.forward(x, act).argmax(-1) == test_y).float().mean().item()
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
