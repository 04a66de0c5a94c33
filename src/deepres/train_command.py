"""What ``deepres train`` runs: the training configuration its flags name (a recipe or a
``--config`` file with the given flags over it, or the run a ``--resume`` continues, with the
changes a resume may make) and the command itself. cli.py parses; this turns the parsed flags
into a :class:`~deepres.train.config.TrainConfig` and trains it."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

from .runtime.options import Option, declared


def train_options() -> list[tuple[str, str, str, Option]]:
    """``(dest, section, field, Option)`` of every config field that declares its flag
    (runtime/options.py): the one source of ``deepres train``'s config flags."""
    from .train.config import SECTIONS

    return [(opt.flag or name, section, name, opt)
            for section, kind in SECTIONS.items() for name, opt in declared(kind)]


# `deepres train` flag -> (config section, field); the resume check and the overrides use it.
TRAIN_FLAGS: dict[str, tuple[str, str]] = {"recipe": ("", "recipe"), **{
    dest: (section, name) for dest, section, name, _ in train_options()}}


def _resume_config(args: argparse.Namespace):
    from .runtime.precision import resolve_precision
    from .train.runs import read_run_config, resume_config

    cfg = read_run_config(args.resume)
    given = {k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k, None) is not None}
    if "precision" in given:
        given["precision"] = resolve_precision(given["precision"],
                                               given.get("device", cfg.run.device))
    return resume_config(args.resume, cfg, given, TRAIN_FLAGS)


def _train_config(args: argparse.Namespace):
    from .train.config import recipe, with_overrides
    from .train.runs import new_run_dir, read_config, restarted_run

    if not args.resume and restarted_run(args.run_dir):  # torchrun --max-restarts: continue
        args.resume, args.run_dir = args.run_dir, None
    if args.resume:
        if args.run_dir is not None and Path(args.run_dir) != Path(args.resume):
            raise ValueError("--run-dir and --resume name different folders; --resume DIR "
                             "continues the run in DIR")
        return _resume_config(args)
    args.model = args.model or (None if args.config else "resnet20")
    if args.run_dir is None:
        args.run_dir = new_run_dir(args.model)
    if args.config:
        if args.recipe:
            raise ValueError("--config and --recipe both say what to train; give one")
        cfg = read_config(Path(args.config))
        if args.model and args.model != cfg.model.name:
            cfg = replace(cfg, model=replace(cfg.model, name=args.model))
    else:
        cfg = recipe(args.recipe or "fast", args.model)
    sections: dict[str, dict] = {"model": {}, "data": {}, "optim": {}, "run": {}}
    for flag, (section, name) in TRAIN_FLAGS.items():
        if section and flag != "model":
            sections[section][name] = getattr(args, flag, None)
    sections["run"]["run_dir"] = args.run_dir
    if args.holdout is not None and args.val_split is None:  # asked to hold out: not val/
        sections["data"]["val_split"] = False
    cfg = with_overrides(cfg, **sections)
    if args.iterations is not None:  # an iteration count replaces the recipe's epochs
        cfg = replace(cfg, optim=replace(cfg.optim, epochs=None))
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from .train import fit

    cfg = _train_config(args)
    summary = fit(cfg, resume=bool(args.resume))
    if int(os.environ.get("RANK", "0")) == 0:
        from .report.curves import plot_run_curves

        # fit() returns results; drawing them is the caller's (the paper's Figures 1, 4, 6).
        curves = plot_run_curves(cfg.run.run_dir, cfg.model.name,
                                 f"{cfg.model.name} ({cfg.recipe}): thin train, bold test")
        if cfg.run.tracker == "mlflow":
            from .train.tracking import log_artifact

            log_artifact(cfg.run.run_dir, curves)
        print(json.dumps(summary, indent=2))
    return 0
