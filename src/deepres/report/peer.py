"""The full-schedule report's peer sections: akamaster's published weights on our test set, and
akamaster's own trainer from scratch on our files (experiments/peer.py reads them)."""

from __future__ import annotations

import statistics
from typing import Any

from ..experiments import paper
from ..experiments.peer import PEER_EPOCHS, PEER_ITERATIONS, PeerRun, parity

PEER_COLUMNS = (" akamaster's published weights, this test set % | the same, fine-tuned here % |",
                "---|---|")

AKAMASTER_NOTE = (
    "akamaster's columns: the errors [akamaster/pytorch_resnet_cifar10](https://github.com/"
    f"akamaster/pytorch_resnet_cifar10) reports for the same nets, trained in PyTorch on the "
    f"original (lossless) CIFAR-10 with its own recipe ({PEER_EPOCHS} epochs of batch 128, about "
    f"{PEER_ITERATIONS // 1000}k iterations against the paper's 64k; lr /10 after epochs 100 and "
    "150; the epoch with the best test error kept), not the paper's recipe; then its published "
    "weights evaluated by `deepres eval` on this JPEG test set, and the same weights fine-tuned "
    "on this JPEG training set (`benchmarks/peer_weights.py`; recipe below).")


def peer_cells(label: str, published: dict[str, dict[str, Any]]) -> str:
    row = published.get(label)
    if row is None:
        return " – | – |"
    return f" {row['published_error']:.2f} | {row['finetuned_error']:.2f} |"


def jpeg_cost(published: dict[str, dict[str, Any]]) -> list[tuple[str, float, float]]:
    """(net, their reported error on the lossless test set, their weights' error here)."""
    return [(k, paper.AKAMASTER_ERROR[k], r["published_error"])
            for k, r in sorted(published.items(), key=lambda kv: int(kv[0][6:]))
            if k in paper.AKAMASTER_ERROR]


def jpeg_cost_text(published: dict[str, dict[str, Any]]) -> str:
    cost = jpeg_cost(published)
    if not cost:
        return ""
    each = ", ".join(f"{k} {theirs:.2f}% -> {here:.2f}% ({here - theirs:+.2f})"
                     for k, theirs, here in cost)
    mean = statistics.mean(here - theirs for _, theirs, here in cost)
    return (f"nets trained on the lossless CIFAR-10 lose {mean:.1f} points on average on these "
            f"images (akamaster's published weights, their reported error -> this test set: "
            f"{each})")


def finetune_note(published: dict[str, dict[str, Any]]) -> list[str]:
    rows = [r for r in published.values() if "finetune_command" in r]
    if not rows:
        return []
    return [f"Fine-tuned here: {rows[0]['finetune_recipe']} (e.g. `{rows[0]['finetune_command']}`,"
            f" on {rows[0]['machine']})."]


def peer_section(runs: list[PeerRun], groups: dict[str, list[dict[str, Any]]]) -> list[str]:
    """akamaster's trainer, unchanged, from scratch on these files, beside our runs."""
    if not runs:
        return []
    lines = ["## akamaster's own trainer on these files", "",
             "`benchmarks/akamaster_trainer.py` runs akamaster's unchanged `trainer.py` "
             "(`train`/`validate`, its transforms and normalisation, SGD 0.1, /10 after epochs "
             f"100 and 150, {PEER_EPOCHS} epochs) on the CPU over this JPEG training and test set. "
             "Its own selection rule keeps the best test epoch; ours reports the final model.", "",
             "| net | seed | epochs done | its final test error % | its best epoch % (epoch) "
             "| ours, final model % | parity (final errors) | its images/s (median epoch, wall "
             "clock, machine shared with other work) | machine |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        ours = [100 * s["test_error"] for s in groups.get(r.net, [])]
        best, epoch = r.best
        final = f"{r.errors[-1]:.2f}" if r.finished else f"(at epoch {len(r.errors)}: " \
                                                          f"{r.errors[-1]:.2f})"
        verdict = parity(r.errors[-1], ours) if r.finished else "running: not judged"
        shown = (f"{statistics.mean(ours):.2f} ({len(ours)} seed(s))" if ours else "–")
        lines.append(f"| {r.net} | {r.seed} | {len(r.errors)} of {PEER_EPOCHS} | {final} "
                     f"| {best:.2f} ({epoch}) | {shown} | {verdict} | {r.images_per_s:.0f} "
                     f"| {'; '.join(r.machines)} |")
    return [*lines, ""]
