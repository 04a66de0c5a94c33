"""Run directories and the resume policy: where a new run goes, when a torchrun restart
continues one, and which settings may change when a run is resumed."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from ..runtime.options import declared
from ..runtime.runfolder import RunFolder
from ..runtime.terminal import safe
from .config import SECTIONS, TrainConfig, with_overrides
from .errors import RunError
from .policy import may_change_on_resume


def new_run_dir(model: str | None) -> str:
    """A fresh folder per run, so a second run never collides; under torchrun every process
    must agree on it, so the job's id names it."""
    stamp = os.environ.get("TORCHELASTIC_RUN_ID") or time.strftime("%Y%m%d-%H%M%S")
    return f"runs/{model or 'run'}-{stamp}"


def restarted_run(run_dir: str | None) -> bool:
    """A torchrun --max-restarts restart of a run that has started: it is continued."""
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    return bool(restarted and run_dir and RunFolder(run_dir).started())


def resume_config(run: str, cfg: TrainConfig, given: dict[str, Any],
                  fields: dict[str, tuple[str, str]]) -> TrainConfig:
    """The saved config ``cfg`` of run folder ``run`` with the settings ``given`` (flag ->
    value; ``fields`` maps a flag to its config section and field) that may change on resume;
    any other that differs is a RunError naming each. After a stop on non-finite values
    (``diverged.json``) the optimisation settings may change too."""
    diverged = RunFolder(run).diverged.exists()
    safe = may_change_on_resume(diverged)  # policy.py RESUME_POLICY
    changed = []
    for flag, value in given.items():
        section, name = fields[flag]
        saved = getattr(getattr(cfg, section) if section else cfg, name)
        if flag not in safe and value != saved and not (
                flag == "data" and Path(str(value)).resolve() == Path(str(saved)).resolve()):
            changed.append(f"--{flag.replace('_', '-')} {value} (the run has {saved})")
    if changed:
        after = ("" if diverged else " (the learning rate and other optimisation settings "
                 "may change only after a stop on non-finite values)")
        raise RunError(f"{run}: these flags differ from the run's config.json and "
                       f"cannot change when resuming: {'; '.join(changed)}{after}. Drop them "
                       "to resume the run as it was, or start a new run with --run-dir")
    # the run section's resumable settings are as given now (None: automatic again)
    keep = {fields[k][1]: given.get(k) for k in may_change_on_resume(False)
            if fields.get(k, ("", ""))[0] == "run"}
    cfg = with_overrides(cfg, run={"run_dir": run, **keep})
    if diverged:
        cfg = with_overrides(cfg, optim={k: given[k] for k in may_change_on_resume(True)
                                         - may_change_on_resume(False) if k in given})
    if "epochs" in given:
        cfg = with_overrides(cfg, optim={"epochs": given["epochs"]})
    elif "iterations" in given and given["iterations"] != cfg.optim.iterations:
        cfg = with_overrides(cfg, optim={"iterations": given["iterations"]})
    return cfg


def read_config(path: Path, error: type[Exception] = ValueError) -> TrainConfig:
    """A ``config.json`` (a run's, or a file for --config, whole or partial), checked by the
    fields' declared types and by each option's own parser (range, choices), so a file accepts
    exactly what the command line does; a bad one raises ``error`` naming the file and key."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot be read ({exc}); nothing was changed") from exc
    try:
        cfg = TrainConfig.from_dict(json.loads(text), str(path))
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not JSON ({exc}); nothing was changed") from exc
    except RecursionError as exc:  # [[[[... 10^5 deep: JSON, but no config
        raise error(f"{path}: nested too deep to be a config; nothing was changed") from exc
    except (ValueError, TypeError) as exc:
        raise error(f"{safe(exc)}; nothing was changed") from exc
    for section, kind in SECTIONS.items():
        for name, opt in declared(kind):
            value = getattr(getattr(cfg, section), name)
            if value is None or value == () or isinstance(value, bool):
                continue
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            try:
                if opt.parse is not None:
                    opt.parse(shown)
                if opt.choices is not None and value not in opt.choices:
                    raise argparse.ArgumentTypeError(
                        f"must be one of {', '.join(opt.choices)}, not {value!r}")
            except argparse.ArgumentTypeError as exc:
                raise error(f"{path}: {section}.{name} (--{(opt.flag or name).replace('_', '-')})"
                            f" {exc}; nothing was changed") from exc
    return cfg


def read_run_config(run: str) -> TrainConfig:
    """The saved config of run folder ``run`` (a RunError when there is none)."""
    path = RunFolder(run).config
    if not path.is_file():
        raise RunError(f"{run}: no run to resume (no config.json there)")
    return read_config(path, RunError)
