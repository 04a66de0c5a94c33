"""Markdown reports (with PNG figures) that put the paper's numbers beside ours."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..analysis.stats import REPRODUCED, Comparison, judge
from ..experiments import paper
from ..experiments.measure import Measured
from ..models import resolve
from ..runtime.files import atomic_write_text
from .differences import absolute_numbers
from .peer import (
    AKAMASTER_NOTE,
    PEER_COLUMNS,
    finetune_note,
    jpeg_cost_text,
    peer_cells,
    peer_section,
)
from .recipe_checks import gap_section
from .runs import mixed_note, precisions_of, runs_table


def _pct(values: list[float]) -> str:
    values = [100 * v for v in values if v == v]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def _header(title: str, scale: str, command: str, device: str,
            m: Measured | None = None) -> list[str]:
    """The title and what every report states: the command, data, schedule, seeds,
    precision, hardware and wall time."""
    lines = [f"# {title}", "",
             f"Made by `{command}` (scale `{scale}`, device `{device}`) on "
             f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}.", ""]
    runs = m.runs if m is not None else []
    done = [m.records[r.key] for r in runs if r.key in m.records] if m is not None else []
    if not runs or not done:
        return lines
    cfg = runs[0].config
    o = cfg.optim
    data = cfg.data.data
    jpeg = (" (the CIFAR-10 JPEG set: a quality-75 re-encoding of the original "
            "images, which costs accuracy against the paper's figures)"
            if "cifar10-jpg" in data else "")
    steps = (f"/10 at iterations {', '.join(str(round(m * o.iterations)) for m in o.milestones)}"
             if o.schedule == "step" else f"{o.schedule} schedule")
    seeds = sorted({r.config.run.seed for r in runs if r.key in m.records})  # finished ones
    precisions = sorted({p for s in done for p in precisions_of(s)})
    guessed = [s["key"] for s in done if s["seconds_estimated"]]
    about = "about " if guessed else ""
    estimated = (f" ({', '.join(guessed)}: resumed from a checkpoint that did not keep the "
                 "time; the part before the resume is estimated from the logged training "
                 "rates, evaluations not counted)" if guessed else "")
    lines += ["| what | value |", "|---|---|",
              f"| data | `{data}`{jpeg}; held out for validation: {cfg.data.holdout:g} |",
              f"| schedule | {o.iterations} iterations of batch {o.batch_size}, lr {o.lr:g}, "
              f"{steps} ({cfg.recipe} recipe) |",
              f"| seeds | {len(seeds)} ({', '.join(map(str, seeds))}) |",
              f"| precision | {', '.join(precisions)}"
              f"{' (torch.compile)' if cfg.run.compile else ''}{mixed_note(done, precisions)} |",
              f"| hardware | each run's own, in the table of runs below (device `{device}`) |",
              f"| wall time | {about}{sum(s['train_seconds'] for s in done) / 60:.1f} min of "
              f"training in {len(done)} runs{estimated} |", "", *runs_table(done)]
    return lines


def _depth_figure(groups: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .curves import draw_error_curves

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, sharey=True)
    late: list[float] = []
    for ax, kind in zip(axes, ("plain", "resnet"), strict=True):
        runs = {}
        for label in sorted((k for k in groups if k.startswith(kind)),
                            key=lambda k: resolve(k).depth):
            summary = groups[label][0]
            # The final model's test error closes the bold curve (Figure 6: dashed training).
            final = {"step": summary["steps"], "test_error": summary["test_error"]}
            runs[f"{kind}-{resolve(label).depth}"] = [*summary["rows"], final]
        draw_error_curves(ax, runs, train_style="--")
        if not runs:
            ax.text(0.5, 0.5, "no finished run yet", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
        late += [100 * r[k] for rows in runs.values() for r in rows[len(rows) // 5:]
                 for k in ("train_error", "test_error") if r.get(k) is not None]
        ax.set_title(("plain networks" if kind == "plain" else "ResNets") +
                     " (dashed: training, bold: test)")
    if late:  # as Figure 6, the range shows where the nets separate; the early, high errors
        # of a short run would squash it (they run off the top)
        axes[0].set_ylim(0, min(100, 5 * (int(max(late)) // 5 + 1)))
    axes[0].set_ylabel("error (%)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _train_curve(summaries: list[dict[str, Any]]) -> dict[int, float]:
    """Training error per logged step, averaged over the seeds that logged that step."""
    per_step: dict[int, list[float]] = defaultdict(list)
    for s in summaries:
        for step, err in s.get("train_curve", {}).items():
            per_step[step].append(err)
    n = len(summaries)
    return {k: statistics.mean(v) for k, v in per_step.items() if len(v) == n}


def _over_the_run(groups: dict[str, list[dict[str, Any]]], shallow: str, deep: str) -> str:
    """How often over the run the deeper net's training error (seed mean) was the higher,
    counted at the logged steps after the first tenth of the run."""
    a, b = _train_curve(groups[shallow]), _train_curve(groups[deep])
    steps = sorted(set(a) & set(b))
    steps = [k for k in steps if k > steps[-1] / 10] if steps else []
    if not steps:
        return ""
    higher = sum(b[k] > a[k] for k in steps)
    return (f"; over the run, {deep}'s training error was the higher at {higher} of "
            f"{len(steps)} logged steps after the first tenth")


def _mean_pct(values: list[float]) -> str:
    """The mean in percent, rounded as the table's figures are (mean of the percentages)."""
    return f"{statistics.mean(100 * v for v in values):.2f}"


def _claims(groups: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Each finding judged by the rule of ``analysis.stats``: a one-sided Welch test over the
    seeds, "reproduced" only at p < 0.05 with at least 3 seeds per arm."""
    lines = []
    # Figure 1/6: deeper plain nets have higher *training* error; Table 6: deeper ResNets have
    # lower *test* error.
    for kind, metric, what in (("plain", "train_error", "training"),
                               ("resnet", "test_error", "test")):
        members = sorted((resolve(k).depth, [s[metric] for s in v])
                         for k, v in groups.items() if k.startswith(kind))
        if len(members) < 2:
            continue
        (d0, v0), (d1, v1) = members[0], members[-1]
        # Arms ordered so that b > a is the paper's direction.
        a, b = (v0, v1) if kind == "plain" else (v1, v0)
        verdict, c = judge(a, b, lambda v: f"{100 * v:.2f}", unit=" points")
        want = "higher" if kind == "plain" else "lower"
        if kind == "plain":  # Figure 1's finding is about the whole run, not only its end
            verdict += _over_the_run(groups, f"{kind}{d0}", f"{kind}{d1}")
        else:
            verdict += _what_it_is(c, f"{kind}{d0}", f"{kind}{d1}")
        lines.append(
            f"- {kind}-{d1} vs {kind}-{d0}: final {what} error {_mean_pct(v1)}% vs "
            f"{_mean_pct(v0)}% (mean of {len(v1)} and {len(v0)} seed(s)); the paper finds the "
            f"deeper {kind} net's {what} error {want}: {verdict}.")
    return lines


def _what_it_is(c: Comparison, shallow: str, deep: str) -> str:
    """What a "reproduced" depth finding establishes: the direction at its p, whether the
    paper's own gap lies in our interval, and where the permutation p stands against its floor
    (with n and m seeds it cannot go below 1 / C(n + m, n))."""
    import math

    if c.verdict != REPRODUCED or c.ci is None or c.p is None:
        return ""
    paper_gap = paper.TABLE6_ERROR.get(shallow, math.nan) - paper.TABLE6_ERROR.get(deep, math.nan)
    floor = 1 / math.comb(c.n_a + c.n_b, c.n_a)
    lo, hi = 100 * c.ci[0], 100 * c.ci[1]
    said = [f"what is reproduced is the direction, at one-sided p = {c.p:.2g}"]
    if not math.isnan(paper_gap):
        inside = lo <= paper_gap <= hi
        said.append(f"the paper's own gap, {paper_gap:.2f} points, lies "
                    f"{'inside' if inside else 'outside'} our 95% CI ({lo:.2f} to {hi:.2f}), "
                    f"so its size is {'' if inside else 'not '}matched")
    if c.p_perm is not None and c.p_perm <= floor + 1e-12:
        said.append(f"the exact permutation p sits at its floor ({floor:.2g}) for "
                    f"{c.n_a} and {c.n_b} seeds: it cannot say more")
    text = "; ".join(said)
    return ". " + text[0].upper() + text[1:]


def report_cifar_depth(m: Measured, out: Path, lines: list[str]) -> None:
    groups, runs = m.groups, m.runs
    full = runs[0].config.optim.iterations >= 64_000  # the paper's schedule: its references too
    lines += ["Figure 6 and Table 6 (§4.2): plain and residual nets of several depths on "
              "CIFAR-10. Test error of the final model (no selection on the test set).", "",
              "| model | params | train error % | val error % | test error % "
              "| paper test error % |" + (" ours - paper (points) | akamaster's test error % |"
                                          + PEER_COLUMNS[0] if full else ""),
              "|---|---|---|---|---|---|" + ("---|---|" + PEER_COLUMNS[1] if full else "")]
    published = m.extra.get("peer_published", {})
    for label in sorted(groups, key=lambda k: (not k.startswith("plain"), resolve(k).depth)):
        ss, params = groups[label], m.params[label]
        ref = paper.TABLE6_ERROR.get(label)
        row = (f"| {label} | {params / 1e6:.2f}M | {_pct([s['train_error'] for s in ss])} "
               f"| {_pct([s.get('val_error', float('nan')) for s in ss])} "
               f"| {_pct([s['test_error'] for s in ss])} | {ref if ref else '–'} |")
        if full:
            ours = statistics.mean(100 * s["test_error"] for s in ss)
            aka = paper.AKAMASTER_ERROR.get(label)
            row += ((f" {ours - ref:+.2f} |" if ref else " – |") + f" {aka if aka else '–'} |"
                    + peer_cells(label, published))
        lines.append(row)
    if full:
        lines += ["", AKAMASTER_NOTE, *finetune_note(published)]
    _depth_figure(groups, out / "cifar-depth.png")
    lines += ["", *absolute_numbers(groups, runs, published)]
    lines += ["", "![training and test error](cifar-depth.png)", "",
              f"The paper: {paper.FIGURE6_CLAIM}.", "", "Ours:", *_claims(groups), "",
              *gap_section(m.extra.get("checks", {}), groups, jpeg_cost_text(published)),
              *peer_section(m.extra.get("peer_runs", []), groups)]


def report_shortcuts(m: Measured, out: Path, lines: list[str]) -> None:
    groups = m.groups
    lines += ["Table 3's question (§4.1) on CIFAR-10: shortcut options A (zero-padded "
              "identity), B (projections where dimensions grow), C (all projections).", "",
              "| model | params | test error % "
              "| paper (ResNet-34, ImageNet, 10-crop top-1/top-5) |",
              "|---|---|---|---|"]
    for label, ss in groups.items():
        option, params = m.configs[label].model.shortcut, m.params[label]
        ref = paper.TABLE3[f"resnet34-{option}"]
        lines.append(f"| {label} | {params / 1e6:.3f}M | {_pct([s['test_error'] for s in ss])} "
                     f"| {ref[0]} / {ref[1]} |")
    lines += ["", "The paper: B is slightly better than A, C marginally better than B; "
              "projections are not essential for addressing degradation.", ""]


def report_table1(m: Measured, out: Path, lines: list[str]) -> None:
    lines += ["Table 1: parameters and multiply-adds at 224x224, counted by deepres's hooks. "
              "`stride in 1x1` is the paper's own placement; `stride in 3x3` is torchvision's.",
              "", "| model | params | GMACs (stride in 1x1) | paper GMACs | ratio | "
              "GMACs (stride in 3x3) |", "|---|---|---|---|---|---|"]
    for r in m.extra["table1"]:
        g1, g3, ref = r["gmacs_1x1"], r["gmacs_3x3"], r["paper_gmacs"]
        lines.append(f"| {r['name']} | {r['params'] / 1e6:.2f}M | {g1:.2f} | {ref} | "
                     f"{g1 / ref:.3f} | {g3:.2f} |")
    lines.append("")


def _imagenet_reference(model: str, shortcut: str | None) -> tuple[str, str]:
    """(which table, the paper's 10-crop top-1) for a run of ``model`` with ``shortcut``."""
    if model in ("plain18", "plain34") or (model in ("resnet18", "resnet34")
                                           and shortcut == "A"):
        return "Table 2", str(paper.TABLE2_TOP1[model])
    # The bottleneck nets are Table 3's with B (no suffix there); ResNet-34 has A, B and C.
    key = model if model in ("resnet50", "resnet101", "resnet152") and shortcut == "B" else (
        f"{model}-{shortcut}" if shortcut else model)
    if key in paper.TABLE3:
        return "Table 3", str(paper.TABLE3[key][0])
    return "–", "–"


def report_imagenet(m: Measured, out: Path, lines: list[str]) -> None:
    groups, configs = m.groups, m.configs
    lines += ["Tables 2 to 4 (§3.4, §4.1): ImageNet networks trained with the imagenet-paper "
              "recipe, each as the paper trained it: Table 2 compares plain and residual 18/34 "
              "with option A shortcuts (zero-padding, parameter-free); Table 3 adds ResNet-34 "
              "with B and C; the bottleneck nets use B with the stride in the first 1x1 "
              "(Table 4). The learning rate is divided by 10 when the validation error "
              "plateaus (a held-out part of train, or the dataset's val/ with --val-split), "
              "and batch-norm statistics are recomputed after training (precise BN). Errors "
              "of the final models on the data's test (or val) split.", "",
              "| model | table | shortcut | stride in 1x1 | validation images | lr drops | "
              "precise BN (batches; val error before -> after) | 1-crop top-1 % | "
              "10-crop top-1 % | 10-crop top-5 % | multi-scale top-1 % | paper 10-crop top-1 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, ss in groups.items():
        cfg = configs[label]
        ten, multi = m.extra["tests"][label]["ten"], m.extra["tests"][label]["multi"]
        table, ref = _imagenet_reference(cfg.model.name, cfg.model.shortcut)
        drops = sum(1 for r in ss[0]["rows"] if r.get("lr_divided"))
        pbn = ss[0].get("precise_bn", {})
        pbn_text = (f"{pbn.get('batches', 0)}; {100 * pbn['val_error_before']:.1f} -> "
                    f"{100 * pbn['val_error_after']:.1f}" if "val_error_before" in pbn
                    else str(pbn.get("batches", "off")))
        val_n = next((r["val_images"] for r in ss[0]["rows"] if "val_images" in r), 0)
        lines.append(f"| {label} | {table} | {cfg.model.shortcut or '–'} | "
                     f"{'yes' if cfg.model.stride_in_1x1 else 'no'} | {val_n} | {drops} | "
                     f"{pbn_text} | {_pct([s['test_error'] for s in ss])} "
                     f"| {_pct([t['top1_error'] for t in ten])} "
                     f"| {_pct([t['top5_error'] for t in ten])} "
                     f"| {_pct([m['top1_error'] for m in multi])} | {ref} |")
    lines.append("")


def report_preact(m: Measured, out: Path, lines: list[str]) -> None:
    """The follow-up paper's Table 3 question: original vs pre-activation units."""
    lines += ["He et al. 2016 (*Identity Mappings in Deep Residual Networks*), Table 3: the "
              "original unit (BN after each convolution, ReLU after the addition) against the "
              "pre-activation unit (BN and ReLU before each convolution, nothing after the "
              "addition) on CIFAR-10, same recipe and seeds. Test error of the final models.",
              "", "| model | unit | block | params | train error % | test error % | paper % |",
              "|---|---|---|---|---|---|---|"]
    pairs: dict[int, dict[str, list[float]]] = defaultdict(dict)
    for label, ss in m.groups.items():
        spec = resolve(m.configs[label].model.name)
        key = ("preact_" if spec.arch == "preact" else "") + f"resnet{spec.depth}"
        pairs[spec.depth][spec.arch] = [s["test_error"] for s in ss]
        lines.append(f"| {label} | {spec.arch} | {'bottleneck' if spec.bottleneck else 'basic'}"
                     f" | {m.params[label] / 1e6:.2f}M | {_pct([s['train_error'] for s in ss])}"
                     f" | {_pct([s['test_error'] for s in ss])} "
                     f"| {paper.PREACT_ERROR.get(key, '–')} |")
    lines += ["", f"The paper: {paper.PREACT_CLAIM}.", "", "Ours:"]
    for depth, arms in sorted(pairs.items()):
        if "original" in arms and "preact" in arms:
            # Arms ordered so that b > a is the paper's direction (pre-activation lower).
            verdict, _ = judge(arms["preact"], arms["original"], lambda v: f"{100 * v:.2f}",
                               unit=" points")
            lines.append(f"- depth {depth}: pre-activation {_mean_pct(arms['preact'])}% vs "
                         f"original {_mean_pct(arms['original'])}% test error (mean of "
                         f"{len(arms['preact'])} and {len(arms['original'])} seed(s)): "
                         f"{verdict}.")
    if m.runs:
        o, x = m.runs[0].config.optim, m.extra
        lines += ["", f"Cost: this plan, {len(m.runs)} runs of {o.iterations} iterations at "
                  f"batch {o.batch_size}, is {x['macs'] / 1e15:.3f} PMACs of training (3x the "
                  f"forward multiply-adds per image). The `full` plan, one seed of "
                  f"{', '.join(x['full_runs'])} at 64,000 iterations of batch 128 (the paper's "
                  f"schedule), is {x['full_macs'] / 1e15:.1f} PMACs: for a GPU.", ""]


def write_report(experiment: str, title: str,
                 render: Callable[[Measured, Path, list[str]], None], scale: str, m: Measured,
                 out: Path, command: str, device: str = "cpu", runs_in_header: bool = True
                 ) -> Path:
    """Render ``experiment``'s measurements as ``OUT/EXPERIMENT.md`` (and its figures): the
    header under ``title``, then what ``render`` appends (deepres/reproduce.py declares
    both)."""
    lines = _header(title, scale, command, device, m if runs_in_header else None)
    missing = [r.key for r in m.runs if r.key not in m.records]
    if missing:
        lines += [f"Not finished (left out of this report): {', '.join(missing)}.", ""]
    render(m, out, lines)
    path = out / f"{experiment}.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
