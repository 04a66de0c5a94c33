"""A run's records: the names of what training logs and summarises (the report reads them by
these names, not by strings of its own), and the logger that writes ``metrics.jsonl``."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..runtime.runfolder import RunFolder

if TYPE_CHECKING:
    from .config import TrainConfig

# Per-step rows of metrics.jsonl
STEP, EPOCH, LR = "step", "epoch", "lr"
TRAIN_LOSS, TRAIN_ERROR, IMAGES_PER_S = "train_loss", "train_error", "images_per_s"
LR_DIVIDED, BEST = "lr_divided", "best"  # a plateau drop; a new best validation error
SPLITS = ("val", "test")


@dataclass(frozen=True)
class SplitKeys:
    """The row and summary keys of one split's evaluation (``val`` or ``test``)."""

    error: str
    top5_error: str
    images: str

    def row(self, m: dict[str, Any]) -> dict[str, Any]:
        """An evaluation result (evaluate/metrics.py) under these keys."""
        return {self.error: m["top1_error"], self.images: m["images"],
                **({self.top5_error: m["top5_error"]} if "top5_error" in m else {})}


def split_keys(split: str) -> SplitKeys:
    return SplitKeys(f"{split}_error", f"{split}_top5_error", f"{split}_images")


def ema_error(split: str) -> str:
    """The moving average's top-1 error on ``split`` (--ema)."""
    return f"ema_{split}_error"


def precise_bn_error(split: str, when: str) -> str:
    """The error before or after precise BN (``when``: "before" or "after")."""
    return f"{split}_error_{when}"


class Logger:
    """metrics.jsonl, TensorBoard and the console; only rank 0 writes anything."""

    def __init__(self, folder: RunFolder, cfg: TrainConfig, is_main: bool,
                 total_steps: int) -> None:
        self.active = is_main
        self.total, self.t0, self.tty = total_steps, time.time(), sys.stderr.isatty()
        self.first_step: int | None = None  # the first step this sitting reports (resume)
        self.folder = folder
        self.tb = None
        self.tracker = None
        if self.active:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(folder.tensorboard))
            except ImportError:  # tensorboard is optional at run time
                self.tb = None
            if cfg.run.tracker == "mlflow":
                from .tracking import MlflowTracker

                self.tracker = MlflowTracker(folder.path, cfg.run.tracking_uri, cfg.to_dict(),
                                             cfg.run.experiment)

    def record(self, row: dict[str, Any]) -> None:
        if not self.active:
            return
        self.folder.append_metrics(row)
        if self.tracker is not None:
            self.tracker.log(row)
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, float | int) and k not in ("step", "epoch"):
                    self.tb.add_scalar(k, v, row["step"])
            self.tb.flush()

    def close(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        """TensorBoard gets the run's settings as hyperparameters (``section.name``) beside its
        final errors (``final/...``), so that runs compare in its HParams tab; the tracker gets
        its files."""
        if self.tracker is not None:
            self.tracker.close(summary)
        if self.tb is None:
            return
        hparams = {f"{section}.{k}": v if isinstance(v, bool | int | float | str) else str(v)
                   for section, fields in config.items() if isinstance(fields, dict)
                   for k, v in fields.items()}
        hparams.update({k: v for k, v in config.items() if isinstance(v, str)})  # the recipe
        final = {f"final/{k}": float(v) for k, v in summary.items()
                 if k.endswith("_error") and isinstance(v, float | int)}
        self.tb.add_hparams(hparams, final, run_name=".")
        self.tb.close()

    def begin(self, step: int) -> None:
        """This sitting trains from ``step``: its rate, and so the ETA, counts from here (the
        first progress line has one, where it once said ``nan``)."""
        self.first_step, self.t0 = step, time.time()

    def progress(self, step: int, text: str) -> None:
        if not self.active:
            return
        done = step / max(1, self.total)
        if self.first_step is None:  # a resumed run's rate counts only this sitting's steps
            self.first_step, self.t0 = step, time.time()
        ran = step - self.first_step
        eta = (time.time() - self.t0) / ran * (self.total - step) if ran > 0 else float("nan")
        line = f"[{step}/{self.total} {100 * done:5.1f}% eta {eta:5.0f}s] {text}"
        if self.tty:
            print("\r" + line.ljust(110), end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if self.active:
            print(("\n" if self.tty else "") + text, file=sys.stderr, flush=True)
