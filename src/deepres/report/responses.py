"""Figure 7's report: layer responses of trained plain and residual nets."""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from ..analysis.responses import layer_response_std
from ..data import load_data
from ..evaluate.testing import load_predictor
from ..experiments import paper
from ..experiments.specs import Run

MAX_IMAGES = 2000


def _responses(run: Run) -> list[float] | None:
    weights = Path(run.config.run.run_dir) / "weights.safetensors"
    if not weights.exists():
        return None
    p = load_predictor(str(weights))
    test = load_data(run.config.data.data).test
    x = torch.from_numpy(test.images[:MAX_IMAGES]).permute(0, 3, 1, 2)
    batches = (p.normalize(x[i:i + 500]) for i in range(0, len(x), 500))
    return layer_response_std(p.model, batches)


def _figure(stds: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), dpi=110)
    for label, values in stds.items():
        style = "--" if label.startswith("plain") else "-"
        top.plot(range(1, len(values) + 1), values, style, label=label, linewidth=1.4)
        bottom.plot(range(1, len(values) + 1), sorted(values, reverse=True), style, label=label,
                    linewidth=1.4)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Standard deviation of 3x3 layer responses (after BN, before addition/ReLU)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report_layer_responses(runs: list[Run], out: Path, lines: list[str]) -> None:
    stds: dict[str, list[float]] = {}
    for run in runs:
        if run.config.run.seed == 0 and run.label not in stds:
            values = _responses(run)
            if values is not None:
                stds[run.label] = values
    lines += ["Figure 7 (§4.2): the standard deviation of each 3x3 layer's response on the "
              f"first {MAX_IMAGES} test images: the output of the BN after the convolution, "
              "before the ReLU and (in a block's second layer) before the addition. How the std "
              "is computed: pooled, i.e. one standard deviation over all images, positions and "
              "channels of the layer together (not per channel then averaged). Pooling keeps "
              "differences between channels' means in the figure, as the magnitude of a "
              "layer's response that the paper compares includes them; BN's learned scale and "
              "shift set both per channel.", "",
              "| model | 3x3 layers | mean std | median std | max std |", "|---|---|---|---|---|"]
    for label, v in stds.items():
        lines.append(f"| {label} | {len(v)} | {statistics.mean(v):.3f} | "
                     f"{statistics.median(v):.3f} | {max(v):.3f} |")
    if stds:
        _figure(stds, out / "layer-responses.png")
        lines += ["", "![layer responses](layer-responses.png)", ""]
    lines += [f"The paper: {paper.FIGURE7_CLAIM}.", "", "Ours:"]
    for depth in sorted({int(k[len('resnet'):]) for k in stds if k.startswith("resnet")}):
        r, p = stds.get(f"resnet{depth}"), stds.get(f"plain{depth}")
        if r and p:
            less = statistics.mean(r) < statistics.mean(p)
            lines.append(f"- depth {depth}: ResNet mean std {statistics.mean(r):.3f} vs plain "
                         f"{statistics.mean(p):.3f}: residual responds "
                         f"{'less' if less else 'more'} "
                         f"({'as in' if less else 'unlike'} the paper).")
    res = sorted((int(k[len("resnet"):]), statistics.mean(v)) for k, v in stds.items()
                 if k.startswith("resnet"))
    if len(res) >= 2:
        (d0, s0), (d1, s1) = res[0], res[-1]
        lines.append(f"- ResNet-{d1} vs ResNet-{d0}: mean std {s1:.3f} vs {s0:.3f}: the deeper "
                     f"one responds {'less' if s1 < s0 else 'more'} per layer "
                     f"({'as in' if s1 < s0 else 'unlike'} the paper).")
    lines.append("")
