"""Training curves drawn like the paper's Figures 1, 4 and 6: thin lines training error,
bold lines test (or validation) error."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence


def draw_error_curves(ax, runs: Mapping[str, Sequence[Mapping]], *, x: str = "step",
                      train_style: str = "-") -> None:
    """On ``ax``: each run's training error as a thin line (``train_style``) and its test (or,
    lacking that, validation) error as a bold line of the same colour, in percent."""
    colors = matplotlib_colors()
    for i, (label, rows) in enumerate(runs.items()):
        color = colors[i % len(colors)]
        tr = [(r[x], 100 * r["train_error"]) for r in rows if r.get("train_error") is not None]
        key = "test_error" if any(r.get("test_error") is not None for r in rows) else "val_error"
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
) -> None:
    """One figure of :func:`draw_error_curves`, written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    draw_error_curves(ax, runs, x=x)
    ax.set_ylabel("error (%)")
    ax.set_title(title or "thin: training error, bold: test error")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_run_curves(run_dir: str | os.PathLike[str], label: str, title: str = "") -> None:
    """``RUN_DIR/curves.png`` from its ``metrics.jsonl`` (what ``deepres train`` draws)."""
    import json
    from pathlib import Path

    run_dir = Path(run_dir)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()
            if x.strip()]
    plot_error_curves({label: rows}, run_dir / "curves.png",
                      title=title or f"{label}: thin train, bold test")
