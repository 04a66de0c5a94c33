"""The full-schedule report's evidence where its errors miss Table 6: the recipe checked on the
runs' own files (experiments/recipe_checks.py measures; this renders)."""

from __future__ import annotations

from typing import Any

from ..experiments import paper

TARGET_POINTS = 1.5  # issue 28: each full-schedule net within 1.5 points of Table 6


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _lr_line(checks: dict[str, Any]) -> str:
    bounds = " and ".join(f"{b:,}" for b in checks["bounds"])
    said = []
    for key, c in checks["runs"].items():
        lr = c["lr"]
        warm = f" (after {lr['warmup']} logged warm-up steps)" if lr["warmup"] else ""
        wrong = (f"; first off: step {lr['first_wrong'][0]:,} at {lr['first_wrong'][1]:g}"
                 if lr["first_wrong"] else "")
        said.append(f"{key} {lr['matching']} of {lr['logged']}{warm}{wrong}")
    return (f"- **Learning rate**: logged steps that used the paper's rate ({checks['lr']:g}, "
            f"/10 after steps {bounds}, §4.2): {'; '.join(said)}.")


def _augment_line(a: dict[str, Any]) -> str:
    expected = a["draws"] / a["offsets"]
    return (f"- **Augmentation** (§4.2's pad-{a['pad']} crop and flip, drawn by the training "
            f"pipeline's own code on {a['draws']:,} copies of an image whose pixels name their "
            f"position): {a['offsets_seen']} of {a['offsets']} crop offsets seen, each "
            f"{a['offset_min']}-{a['offset_max']} times ({expected:.0f} expected); "
            f"{100 * a['flipped']:.1f}% flipped (50% expected); padding "
            f"{'all zero' if a['padding_zero'] else 'NOT zero'}.")


def _phase_table(checks: dict[str, Any]) -> list[str]:
    ends = [*checks["bounds"], None]
    head = " | ".join(f"step {e:,}" if e else "final" for e in ends)
    lines = [f"| run | test error % at {head} | training error % at {head} |",
             "|---|" + "---|" * (2 * len(ends))]
    for key, c in checks["runs"].items():
        ph = c["phases"]
        lines.append(f"| {key} | " + " | ".join(_pct(p["test_error"]) for p in ph) + " | "
                     + " | ".join(_pct(p["train_error"]) for p in ph) + " |")
    return lines


def gap_section(checks: dict[str, Any], groups: dict[str, list[dict[str, Any]]],
                jpeg_cost: str = "") -> list[str]:
    """Said where a full-schedule net misses Table 6 by more than the target: which nets, the
    recipe checks, the error at the end of each learning-rate phase, and what stays unmeasured."""
    if not checks:
        return []
    missed = []
    for label, ss in sorted(groups.items()):
        ref = paper.TABLE6_ERROR.get(label)
        if ref is None:
            continue
        ours = sum(100 * s["test_error"] for s in ss) / len(ss)
        if ours - ref > TARGET_POINTS:
            final_train = sum(100 * s["train_error"] for s in ss) / len(ss)
            missed.append(f"{label} {ours:.2f}% against {ref}% (training error "
                          f"{final_train:.2f}%)")
    if not missed:
        return []
    return ["## Why the errors miss Table 6: the recipe checked", "",
            f"Beyond {TARGET_POINTS} points of the paper: {'; '.join(missed)}. Checked on the "
            "runs' own files, so that a fault of the recipe would show here:", "",
            _lr_line(checks), _augment_line(checks["augment"]),
            "- **Where the error is lost**: the error at the end of each learning-rate phase "
            "(Figure 6's curves step down at each division), the training error as the mean "
            "of the last five logged values:", "", *_phase_table(checks), "",
            "Each net's training error ends far below its test error: the nets fit their "
            "training images, and what they lose against the paper is on images they have not "
            "seen. That points at the data (the quality-75 JPEG re-encoding removes "
            "detail from the training and the test images alike), " + (
                f"and what the data costs is measured: {jpeg_cost}. "
                if jpeg_cost else "which is not measured here. ") +
            "bf16 autocast is not measured (that needs a matched run in fp32), so it is not "
            "counted as a cause.", ""]
