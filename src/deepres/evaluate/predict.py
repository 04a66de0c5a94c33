"""``deepres predict``: top-k classes of image files; a bad file is reported and the rest go on."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..data.images import is_image_name
from ..data.testtime import test_batches
from ..loaded import load_predictor, probs_single
from ..runtime.options import RUNNING_PRECISION


def expand_inputs(inputs: Iterable[str]) -> Iterator[str]:
    """Files as given; folders walked for image files (hidden entries skipped), sorted."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if is_image_name(name) and not name.startswith("."):
                        yield os.path.join(dirpath, name)
        else:
            yield str(path)


def predict_files(weights: str, inputs: Iterable[str], top_k: int = 5, device: str = "cpu",
                  precision: str | None = RUNNING_PRECISION, model_name: str | None = None,
                  classes_file: str | None = None, batch_size: int = 64, workers: int = 2,
                  engine: str | None = None) -> Iterator[dict[str, Any]]:
    """Top-k classes of every image file in ``inputs`` (folders walked), in batches decoded by
    ``workers`` DataLoader processes, run by ``engine`` ("auto" says its choice on stderr); a
    bad file yields ``{"file", "error"}``."""
    paths = list(expand_inputs(inputs))  # no images: nothing is loaded (the caller says so)
    if not paths:
        return
    p = load_predictor(weights, device, precision, model_name, classes_file, engine)
    if engine == "auto":
        print(p.describe_engine(), file=sys.stderr, flush=True)
    done = 0
    for b in test_batches(paths, p.spec, batch_size, workers=workers, tolerate_bad=True,
                          desc="predicting"):
        probs = probs_single(p, b.images.to(p.device)).cpu()
        for j, reason in enumerate(b.errors):
            path = paths[done + j]
            yield ({"file": path, "error": reason} if reason
                   else {"file": path, **p.top_classes(probs[j], top_k)})
        done += len(b.errors)
