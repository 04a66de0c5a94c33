"""The confusion matrix of an evaluation as a PNG, with class names on both axes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runtime.files import atomic_write
from ..runtime.terminal import safe


def draw_confusion(result: dict[str, Any], path: str | Path) -> Path:
    """Rows: true class; columns: predicted; cells coloured by the share of the true class,
    annotated with counts where the matrix is small enough to read them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(result["confusion"], dtype=float)
    names = [safe(c) for c in result["classes"]]
    k = len(names)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = min(4 + 0.45 * k, 30)
    fig, ax = plt.subplots(figsize=(size, size * 0.85), dpi=110)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=max(5, 10 - k // 10))
    ax.set_yticks(range(k), names, fontsize=max(5, 10 - k // 10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_title(f"top-1 error {100 * result['top1_error']:.2f}% on {result['images']} images")
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(path)
