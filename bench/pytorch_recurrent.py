"""Recurrent networks on row-sequential MNIST in PyTorch: the baseline `cargo xtask bench
--only recurrent` times `vgrad train --model rnn|lstm|gru` against.

Same task as vgrad's: each MNIST image read as 28 time steps of its 28 pixel rows (the
vendored MNIST, first 5,000 training images held out, batches drawn without replacement
and reshuffled every epoch, as `pytorch_baseline.py`'s `Order`), one recurrent layer of
`--hidden` units (`nn.RNN` with tanh, `nn.LSTM` or `nn.GRU`, `batch_first=True`, PyTorch's
default init, which vgrad's `--recurrent-init uniform` repeats), its last hidden state read
out by `nn.Linear(hidden, 10)`, mean softmax cross-entropy, Adam 1e-3 (PyTorch's default
implementation or `fused=True`). One thread, like vgrad.

Each step (a slice of the data order, one gather of the batch, forward, backward, the
optimizer's step) is timed on its own; the median leaves out step 0, as vgrad's
`step_us` does (its first touch of every buffer), and nothing is logged.

  python pytorch_recurrent.py --model lstm [--fused] [--steps 300] [--hidden 128] [--batch-size 128]

Prints one JSON object on stdout: model, steps, step_us (the median step after step 0,
microseconds), train_s, test accuracy.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from pytorch_baseline import Order, load_mnist

ROWS = 28
FEATURES = 28


class Net(torch.nn.Module):
    """A recurrent layer read out from its last hidden state by a dense layer."""

    def __init__(self, model, hidden):
        super().__init__()
        if model == "rnn":
            self.rnn = torch.nn.RNN(FEATURES, hidden, nonlinearity="tanh", batch_first=True)
        elif model == "lstm":
            self.rnn = torch.nn.LSTM(FEATURES, hidden, batch_first=True)
        elif model == "gru":
            self.rnn = torch.nn.GRU(FEATURES, hidden, batch_first=True)
        else:
            raise SystemExit(f"unknown model {model!r}")
        self.readout = torch.nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.readout(out[:, -1])


def train(args, data):
    train_x, train_y, test_x, test_y = data
    net = Net(args.model, args.hidden)
    opt = torch.optim.Adam(
        net.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, fused=args.fused or None
    )
    order = Order(len(train_x), [args.seed])
    b = args.batch_size
    times = []
    start = time.perf_counter()
    for _ in range(args.steps):
        t = time.perf_counter()
        idx = order.take(b).reshape(-1)
        x = train_x.index_select(0, idx).view(b, ROWS, FEATURES)
        y = train_y.index_select(0, idx)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    train_s = time.perf_counter() - start
    with torch.no_grad():
        logits = net(test_x.view(-1, ROWS, FEATURES))
        acc = (logits.argmax(-1) == test_y).float().mean().item()
    return {
        "model": args.model,
        "hidden": args.hidden,
        "batch_size": b,
        "steps": args.steps,
        "step_us": 1e6 * statistics.median(times[1:]) if len(times) > 1 else float("nan"),
        "train_s": train_s,
        "test_acc": acc,
        "fused": bool(args.fused),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=["rnn", "lstm", "gru"])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--fused", action="store_true", help="Adam's fused=True")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    args = p.parse_args()
    if args.steps < 2:
        raise SystemExit("--steps must be at least 2: step 0 is left out of the median")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(json.dumps(train(args, load_mnist(args.data))), flush=True)


if __name__ == "__main__":
    sys.exit(main())
