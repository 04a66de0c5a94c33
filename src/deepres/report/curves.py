"""Training curves drawn like the paper's Figures 1, 4 and 6: thin lines training error,
bold lines test (or validation) error."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence


def plot_error_curves(
    runs: Mapping[str, Sequence[Mapping]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    x: str = "step",
) -> None:
    """``runs`` maps a label to its metrics records (``metrics.jsonl`` rows). Rows with
    ``train_error`` give the thin curve, rows with ``test_error`` or ``val_error`` the bold one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, rows) in enumerate(runs.items()):
        color = colors[i % len(colors)]
        tr = [(r[x], 100 * r["train_error"]) for r in rows if r.get("train_error") is not None]
        key = "test_error" if any(r.get("test_error") is not None for r in rows) else "val_error"
        te = [(r[x], 100 * r[key]) for r in rows if r.get(key) is not None]
        if tr:
            ax.plot(*zip(*tr, strict=True), color=color, linewidth=0.8, alpha=0.8)
        if te:
            ax.plot(*zip(*te, strict=True), color=color, linewidth=2.4, label=label)
    ax.set_xlabel("iterations" if x == "step" else x)
    ax.set_ylabel("error (%)")
    ax.set_title(title or "thin: training error, bold: test error")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
