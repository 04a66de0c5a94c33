"""Weights from the Hugging Face Hub's local cache, with their own preprocessing:
``hf-hub:ORG/NAME[@REVISION]``, and ``timm:NAME`` for ``hf-hub:timm/NAME``.

deepres downloads nothing from the Hub: the files must already be in the local cache
(``huggingface-cli download timm/resnet50.a1_in1k`` on a machine that reaches the Hub, or
``timm.create_model(..., pretrained=True)``, then the cache copied over). The cache is found as
the Hub's own tools find it: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
``~/.cache/huggingface/hub``. A timm model's ``config.json`` carries its ``pretrained_cfg``
(input size, interpolation, crop_pct, mean, std), which becomes the weights' input
specification, so that e.g. ``resnet50.a1_in1k`` is tested with bicubic resizing and a 0.95 crop
as timm does, not with torchvision's preprocessing.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from ..inputspec import INTERPOLATIONS, InputSpec
from .errors import WeightsError

PREFIXES = ("hf-hub:", "timm:")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def is_hub_source(source: object) -> bool:
    return isinstance(source, str) and source.startswith(PREFIXES)


def cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def _repo(source: str) -> tuple[str, str]:
    rest = source.split(":", 1)[1]
    repo = f"timm/{rest}" if source.startswith("timm:") else rest
    repo, _, revision = repo.partition("@")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise WeightsError(f"{source}: a Hub name is hf-hub:ORG/NAME[@REVISION] or timm:NAME")
    return repo, revision or "main"


def snapshot(source: str) -> Path:
    """The cached snapshot folder of ``source``; WeightsError naming the cache when absent."""
    repo, revision = _repo(source)
    root = cache_dir() / f"models--{repo.replace('/', '--')}"
    ref = root / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    folder = root / "snapshots" / commit
    if not folder.is_dir():
        raise WeightsError(f"{source}: not in the local Hugging Face cache ({cache_dir()}); "
                           f"deepres does not download from the Hub: run `huggingface-cli "
                           f"download {repo}` where the Hub is reachable and copy the cache, or "
                           "set HF_HUB_CACHE to the cache that holds it")
    return folder


def weights_file(source: str) -> Path:
    folder = snapshot(source)
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise WeightsError(f"{source}: the cached snapshot {folder} has no "
                       f"{' or '.join(WEIGHT_FILES)}")


def pretrained_cfg(source: str) -> dict[str, Any]:
    """The model's ``config.json`` (timm's layout; {} when there is none)."""
    path = snapshot(source) / "config.json"
    if not path.is_file():
        return {}
    try:
        cfg = json.loads(path.read_text())
    except ValueError as exc:
        raise WeightsError(f"{path}: not valid JSON ({exc})") from exc
    return cfg if isinstance(cfg, dict) else {}


def hub_spec(source: str) -> InputSpec | None:
    """The input specification in the model's ``pretrained_cfg``: its input size, the resize
    to ``floor(size / crop_pct)`` (timm's test transform), interpolation, mean and std."""
    pc = pretrained_cfg(source).get("pretrained_cfg") or {}
    try:
        size = int(pc["input_size"][-1])
        crop = float(pc.get("crop_pct", 0.875))
        interp = str(pc.get("interpolation", "bilinear"))
        import torch

        spec = InputSpec(size, max(size, math.floor(size / crop)),
                         torch.tensor([float(v) for v in pc["mean"]]),
                         torch.tensor([float(v) for v in pc["std"]]),
                         interp if interp in INTERPOLATIONS else "bicubic")
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return spec


def hub_architecture(source: str) -> str | None:
    """The model name the config gives (timm's ``architecture``: resnet50, ...)."""
    arch = pretrained_cfg(source).get("architecture")
    return arch if isinstance(arch, str) else None
