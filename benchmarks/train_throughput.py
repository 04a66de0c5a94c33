"""Train-step throughput, ours vs a plain-PyTorch / torchvision equivalent, same batch, one run.

    .venv/bin/python benchmarks/train_throughput.py [--reps 5] [--compile]

Each pair is timed interleaved (ours, theirs, ours, theirs, ...) and reported as a ratio of
medians, since these machines are noisy. Also: what channels_last and torch.compile add to ours.
"""

from __future__ import annotations

import argparse
import platform

import torch
import torch.nn.functional as F
import torchvision
from timing import interleaved, train_step
from torch import nn

import deepres


class RefBlock(nn.Module):
    """A textbook CIFAR basic block with the option-A shortcut, written without deepres."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        sc = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.extra:
            sc = F.pad(sc, (0, 0, 0, 0, 0, self.extra))
        return F.relu(out + sc)


def ref_resnet20() -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                               nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(RefBlock(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow)")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")

    bs = 128
    x, y = torch.randn(bs, 3, 32, 32), torch.randint(0, 10, (bs,))
    ours, ref = deepres.create_model("resnet20"), ref_resnet20()
    assert deepres.count_params(ours) == sum(p.numel() for p in ref.parameters())
    fns = {"deepres resnet20": train_step(ours, x, y),
           "plain-PyTorch resnet20": train_step(ref, x, y)}
    ours_cl = deepres.create_model("resnet20").to(memory_format=torch.channels_last)
    fns["deepres resnet20 channels_last"] = train_step(
        ours_cl, x.contiguous(memory_format=torch.channels_last), y)
    if args.compile:
        fns["deepres resnet20 compiled"] = train_step(
            torch.compile(deepres.create_model("resnet20")), x, y)
    t20 = interleaved(fns, args.reps, iters=5)
    base = t20["plain-PyTorch resnet20"]
    print(f"\nresnet20, batch {bs}, 32x32, train step (forward+backward+SGD)")
    print("| model | images/s | ratio vs plain PyTorch |\n|---|---|---|")
    for k, v in t20.items():
        print(f"| {k} | {bs / v:.0f} | {base / v:.2f} |")

    bs50, size = 16, 128
    x, y = torch.randn(bs50, 3, size, size), torch.randint(0, 1000, (bs50,))
    ours, tv = deepres.create_model("resnet50"), torchvision.models.resnet50()
    tv.load_state_dict(ours.state_dict())
    fns = {"deepres resnet50": train_step(ours, x, y), "torchvision resnet50": train_step(tv, x, y)}
    ours_cl = deepres.create_model("resnet50").to(memory_format=torch.channels_last)
    fns["deepres resnet50 channels_last"] = train_step(
        ours_cl, x.contiguous(memory_format=torch.channels_last), y)
    t50 = interleaved(fns, args.reps, iters=2, warmup=1)
    base = t50["torchvision resnet50"]
    print(f"\nresnet50, batch {bs50}, {size}x{size}, train step")
    print("| model | images/s | ratio vs torchvision |\n|---|---|---|")
    for k, v in t50.items():
        print(f"| {k} | {bs50 / v:.1f} | {base / v:.2f} |")


if __name__ == "__main__":
    main()
