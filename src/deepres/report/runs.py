"""The table of a report's runs: each run's length, time, initialisation, precision (each
sitting's, where a run moved between machines) and machine."""

from __future__ import annotations

from itertools import groupby
from typing import Any


def _machine(s: dict[str, Any]) -> str:
    segs = [g for g in s.get("segments") or [] if g.get("machine")]
    # consecutive sittings on one kind of machine are one span; more than one span: it moved
    spans = [list(run) for _, run in groupby(segs, key=lambda g: g["machine"])]
    if len(spans) > 1:
        return "; ".join(f"steps {run[0]['from_step']}-{run[-1]['to_step']}: "
                         f"{_machine({'machine': run[0]['machine']})}" for run in spans)
    m = s.get("machine")
    if not m:
        return "not recorded (made before runs recorded their machine)"
    flags = ", ".join(f for f in m.get("cpu_flags", []) if "bf16" in f or "amx" in f)
    gpu = f", {m['gpu']}" if m.get("gpu") else ""
    return (f"{m.get('cpu', '?')}{gpu}, {m.get('cores', '?')} cores"
            f"{', ' + flags if flags else ''}, torch {m.get('torch', '?')}, "
            f"{m.get('precision', s.get('precision', '?'))}")


def precisions_of(s: dict[str, Any]) -> list[str]:
    """The precisions a run trained in, sitting by sitting (a run may move between machines)."""
    segs = s.get("segments") or []
    found = [g["machine"].get("precision", "?") for g in segs if g.get("machine")]
    return list(dict.fromkeys(found)) or [s.get("precision", "fp32")]


def mixed_note(done: list[dict[str, Any]], precisions: list[str]) -> str:
    """Said where the runs (or an arm's seeds) did not all train in one precision."""
    if len(precisions) < 2:
        return ""
    by = {p: [s["key"] for s in done if p in precisions_of(s)] for p in precisions}
    return ("; mixed: " + "; ".join(f"{p} in {', '.join(keys)}" for p, keys in by.items())
            + " (an arm whose seeds differ in precision compares them as they are)")


def runs_table(done: list[dict[str, Any]]) -> list[str]:
    """One row a run: its seed, length, time, weight initialisation (the recipe version: runs
    made before the option existed used fan_out), its precision (each sitting's, where they
    differ) and the machine it was trained on."""
    lines = ["| run | steps | training min | conv init | precision | machine |",
             "|---|---|---|---|---|---|"]
    for s in sorted(done, key=lambda s: s["key"]):
        init = s["conv_init"] + ("" if s["conv_init_recorded"] else " (before the option)")
        lines.append(f"| {s['key']} | {s['steps']} | {'about ' if s['seconds_estimated'] else ''}"
                     f"{s['train_seconds'] / 60:.1f} | {init} | {', '.join(precisions_of(s))} "
                     f"| {_machine(s)} |")
    return [*lines, ""]
