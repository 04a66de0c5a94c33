"""Training curves drawn like the paper's Figures 1, 4 and 6: thin lines training error,
bold lines test (or validation) error."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path


def draw_error_curves(ax, runs: Mapping[str, Sequence[Mapping]], *, x: str = "step",
                      train_style: str = "-", bold: str = "test") -> None:
    """On ``ax``: each run's training error as a thin line (``train_style``) and its ``bold``
    ("test" or "val") error as a bold line of the same colour (the other where a run lacks
    it), in percent."""
    colors = matplotlib_colors()
    other = "val" if bold == "test" else "test"
    for i, (label, rows) in enumerate(runs.items()):
        color = colors[i % len(colors)]
        tr = [(r[x], 100 * r["train_error"]) for r in rows if r.get("train_error") is not None]
        key = (f"{bold}_error" if any(r.get(f"{bold}_error") is not None for r in rows)
               else f"{other}_error")
        te = [(r[x], 100 * r[key]) for r in rows if r.get(key) is not None]
        if tr:
            ax.plot(*zip(*tr, strict=True), color=color, linewidth=0.8, linestyle=train_style)
        if te:
            ax.plot(*zip(*te, strict=True), color=color, linewidth=2.4, label=label)
    ax.set_xlabel("iterations" if x == "step" else x)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def matplotlib_colors() -> list[str]:
    import matplotlib.pyplot as plt

    return plt.rcParams["axes.prop_cycle"].by_key()["color"]


def plot_error_curves(
    runs: Mapping[str, Sequence[Mapping]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    x: str = "step",
    bold: str = "test",
) -> None:
    """One figure of :func:`draw_error_curves`, written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    draw_error_curves(ax, runs, x=x, bold=bold)
    ax.set_ylabel("error (%)")
    ax.set_title(title or f"thin: training error, bold: {bold} error")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_run_curves(run_dir: str | os.PathLike[str], label: str, title: str = "") -> Path:
    """``RUN_DIR/curves.png`` from its ``metrics.jsonl`` (what ``deepres train`` draws); returns
    the path it wrote."""
    from ..runtime.runfolder import RunFolder

    folder = RunFolder(run_dir)
    rows = folder.read_metrics()
    # A run with a validation split picks its best weights by it: that is the bold line.
    bold = "val" if any(r.get("val_error") is not None for r in rows) else "test"
    shown = {"val": "validation", "test": "test"}[bold]
    plot_error_curves({label: rows}, folder.curves, bold=bold,
                      title=(title or f"{label}: thin train, bold test").replace(
                          "bold test", f"bold {shown}"))
    return folder.curves
