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
from .experiments import seed_verdict

MAX_IMAGES = 2000


def _responses(run: Run, images: dict[str, torch.Tensor]) -> list[float] | None:
    """The run's per-layer stds; ``images`` keeps each dataset's test images once loaded (the
    runs of a report share one dataset)."""
    weights = Path(run.config.run.run_dir) / "weights.safetensors"
    if not weights.exists():
        return None
    p = load_predictor(str(weights))
    data = run.config.data.data
    if data not in images:
        test = load_data(data).test
        images[data] = torch.from_numpy(test.images[:MAX_IMAGES]).permute(0, 3, 1, 2)
    x = images[data]
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


def _judge(smaller: str, larger: str, a: list[float], b: list[float]) -> str:
    """Whether ``smaller``'s per-seed mean stds ``a`` are below ``larger``'s ``b`` by more
    than the spread between seeds (max - min over seeds, the larger of the two measured)."""
    gap = statistics.mean(b) - statistics.mean(a)  # > 0: the paper's direction
    spreads = [max(v) - min(v) for v in (a, b) if len(v) > 1]
    single = [name for name, v in ((smaller, a), (larger, b)) if len(v) == 1]
    one = f"; {' and '.join(single)} one seed so far" if single and spreads else ""
    if not spreads:
        return "not resolved: one seed per net, so no spread between seeds was measured"
    return seed_verdict(gap, max(spreads), lambda v: f"{v:.3f}", note=one,
                        contradicted="contradicted")


def _smaller_layers(a: list[float], b: list[float]) -> str:
    """Figure 7 (bottom) compares the layers sorted by magnitude: at how many ranks is ``a``
    the smaller (nets of one depth have the same number of 3x3 layers)."""
    pairs = list(zip(sorted(a, reverse=True), sorted(b, reverse=True), strict=False))
    return f"{sum(x < y for x, y in pairs)} of {len(pairs)}"


def report_layer_responses(runs: list[Run], out: Path, lines: list[str]) -> None:
    # Every seed's trained net: the findings are judged against the spread between seeds.
    stds: dict[str, list[list[float]]] = {}
    images: dict[str, torch.Tensor] = {}
    for run in sorted(runs, key=lambda r: r.config.run.seed):
        values = _responses(run, images)
        if values is not None:
            stds.setdefault(run.label, []).append(values)
    means = {k: [statistics.mean(v) for v in per_seed] for k, per_seed in stds.items()}
    lines += ["Figure 7 (§4.2): the standard deviation of each 3x3 layer's response on the "
              f"first {MAX_IMAGES} test images: the output of the BN after the convolution, "
              "before the ReLU and (in a block's second layer) before the addition. How the std "
              "is computed: pooled, i.e. one standard deviation over all images, positions and "
              "channels of the layer together (not per channel then averaged). Pooling keeps "
              "differences between channels' means in the figure, as the magnitude of a "
              "layer's response that the paper compares includes them; BN's learned scale and "
              "shift set both per channel. A net's figure is the mean over its layers; with "
              "several seeds, the table gives the mean ± standard deviation over seeds, and the "
              "median and max are of seed 0, as is the figure.", "",
              "| model | seeds | 3x3 layers | mean std | median std (seed 0) | max std (seed 0) |",
              "|---|---|---|---|---|---|"]
    for label, per_seed in stds.items():
        m, first = means[label], per_seed[0]
        mean = (f"{statistics.mean(m):.3f} ± {statistics.stdev(m):.3f}" if len(m) > 1
                else f"{m[0]:.3f}")
        lines.append(f"| {label} | {len(per_seed)} | {len(first)} | {mean} | "
                     f"{statistics.median(first):.3f} | {max(first):.3f} |")
    if stds:
        _figure({k: v[0] for k, v in stds.items()}, out / "layer-responses.png")
        lines += ["", "![layer responses (seed 0)](layer-responses.png)", ""]
    lines += [f"The paper: {paper.FIGURE7_CLAIM}.", "", "Ours:"]
    for depth in sorted({int(k[len('resnet'):]) for k in stds if k.startswith("resnet")}):
        r, p = f"resnet{depth}", f"plain{depth}"
        if r in means and p in means:
            lines.append(
                f"- depth {depth}: ResNet mean std {statistics.mean(means[r]):.3f} vs plain "
                f"{statistics.mean(means[p]):.3f}; the paper finds the residual net's responses "
                f"smaller: {_judge(r, p, means[r], means[p])}. Sorted by magnitude, the "
                f"ResNet's layer is the smaller at {_smaller_layers(stds[r][0], stds[p][0])} "
                "ranks (seed 0).")
    res = sorted((int(k[len("resnet"):]), k) for k in means if k.startswith("resnet"))
    if len(res) >= 2:
        (d0, k0), (d1, k1) = res[0], res[-1]
        lines.append(f"- ResNet-{d1} vs ResNet-{d0}: mean std "
                     f"{statistics.mean(means[k1]):.3f} vs {statistics.mean(means[k0]):.3f}; "
                     "the paper finds the deeper one's responses smaller per layer: "
                     f"{_judge(k1, k0, means[k1], means[k0])}.")
    lines.append("")
