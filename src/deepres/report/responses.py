"""Figure 7's report: layer responses of trained plain and residual nets."""

from __future__ import annotations

import statistics
from pathlib import Path

from ..analysis.responses import METHODS
from ..analysis.stats import CONSISTENT, CONTRADICTED, NOT_RESOLVED, REPRODUCED, judge
from ..experiments import paper
from ..experiments.measure import LAYER_RESPONSE_IMAGES, Measured
from ..models import resolve


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


def _judge(smaller: str, larger: str, a: dict[str, list[float]], b: dict[str, list[float]]
           ) -> str:
    """Whether ``smaller``'s per-seed mean stds are below ``larger``'s, by the rule of
    ``analysis.stats`` under each std method; a finding is claimed only where both methods
    give the same verdict, else the weaker one is given and the disagreement said."""
    said, verdicts = [], []
    for method in METHODS:
        text, c = judge(a[method], b[method], lambda v: f"{v:.3f}")
        said.append(f"{method}: {text}")
        verdicts.append(c.verdict)
    if len(set(verdicts)) == 1:
        return f"{verdicts[0]} by both methods ({'; '.join(said)})"
    order = (CONTRADICTED, NOT_RESOLVED, CONSISTENT, REPRODUCED)
    weaker = NOT_RESOLVED if CONTRADICTED in verdicts else min(verdicts, key=order.index)
    return f"{weaker}: the two std methods disagree ({'; '.join(said)})"


def _smaller_layers(a: list[float], b: list[float]) -> str:
    """Figure 7 (bottom) compares the layers sorted by magnitude: at how many ranks is ``a``
    the smaller (nets of one depth have the same number of 3x3 layers)."""
    pairs = list(zip(sorted(a, reverse=True), sorted(b, reverse=True), strict=False))
    return f"{sum(x < y for x, y in pairs)} of {len(pairs)}"


_HOW = ("Figure 7 (§4.2): the standard deviation of each 3x3 layer's response on "
        + ("every image of the test split (all classes alike)"
           if LAYER_RESPONSE_IMAGES is None else f"the first {LAYER_RESPONSE_IMAGES} test images")
        + ": the output of the BN after the convolution, "
        "before the ReLU and (in a block's second layer) before the addition. The paper does "
        "not say how the std is taken, so it is computed two ways and a finding is claimed "
        "only where both agree: *pooled*, one standard deviation over all images, positions "
        "and channels of the layer together (differences between channels' means count, as "
        "BN's learned shift sets them per channel); *per-channel*, each channel's std over "
        "images and positions, then the mean over channels (they do not). A net's figure is "
        "the mean over its layers; with several seeds, the table gives the mean ± standard "
        "deviation over seeds. The figure shows seed 0, pooled. Each finding is a one-sided "
        "Welch test over the seeds' means (analysis/stats.py): \"reproduced\" only at p < "
        "0.05 with at least 3 seeds per net.")


def _mean_sd(values: list[float]) -> str:
    if len(values) > 1:
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
    return f"{values[0]:.3f}"


def report_layer_responses(m: Measured, out: Path, lines: list[str]) -> None:
    # Every seed's trained net, by both methods: findings are tested over the seeds.
    stds: dict[str, list[dict[str, list[float]]]] = m.extra["stds"]
    means = {k: {m: [statistics.mean(v[m]) for v in per_seed] for m in METHODS}
             for k, per_seed in stds.items()}
    lines += [_HOW, "", "| model | seeds | 3x3 layers | mean std, pooled | mean std, per-channel "
              "| median std (seed 0, pooled) | max std (seed 0, pooled) |",
              "|---|---|---|---|---|---|---|"]
    for label, per_seed in stds.items():
        first = per_seed[0]["pooled"]
        lines.append(f"| {label} | {len(per_seed)} | {len(first)} | "
                     f"{_mean_sd(means[label]['pooled'])} | "
                     f"{_mean_sd(means[label]['per-channel'])} | "
                     f"{statistics.median(first):.3f} | {max(first):.3f} |")
    if stds:
        _figure({k: v[0]["pooled"] for k, v in stds.items()}, out / "layer-responses.png")
        lines += ["", "![layer responses (seed 0, pooled)](layer-responses.png)", ""]
    lines += [f"The paper: {paper.FIGURE7_CLAIM}.", "", "Ours:"]
    specs = {k: resolve(m.configs[k].model.name) for k in stds}
    nets = {(spec.residual, spec.depth): k for k, spec in specs.items()}
    for depth in sorted(d for residual, d in nets if residual):
        r, p = nets[(True, depth)], nets.get((False, depth), "")
        if r in means and p in means:
            ranks = ", ".join(f"{_smaller_layers(stds[r][0][m], stds[p][0][m])} ({m})"
                              for m in METHODS)
            lines.append(
                f"- depth {depth}: ResNet mean std {statistics.mean(means[r]['pooled']):.3f} vs "
                f"plain {statistics.mean(means[p]['pooled']):.3f} pooled, "
                f"{statistics.mean(means[r]['per-channel']):.3f} vs "
                f"{statistics.mean(means[p]['per-channel']):.3f} per-channel; the paper finds "
                f"the residual net's responses smaller: {_judge(r, p, means[r], means[p])}. "
                f"Sorted by magnitude, the ResNet's layer is the smaller at {ranks} ranks "
                "(seed 0).")
    res = sorted((d, k) for (residual, d), k in nets.items() if residual)
    if len(res) >= 2:
        (d0, k0), (d1, k1) = res[0], res[-1]
        lines.append(f"- ResNet-{d1} vs ResNet-{d0}: mean std "
                     f"{statistics.mean(means[k1]['pooled']):.3f} vs "
                     f"{statistics.mean(means[k0]['pooled']):.3f} pooled, "
                     f"{statistics.mean(means[k1]['per-channel']):.3f} vs "
                     f"{statistics.mean(means[k0]['per-channel']):.3f} per-channel; the paper "
                     "finds the deeper one's responses smaller per layer: "
                     f"{_judge(k1, k0, means[k1], means[k0])}.")
    lines.append("")
