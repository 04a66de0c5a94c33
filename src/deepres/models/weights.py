"""Loading and saving weights without ever running code from a file.

Reads ``.safetensors`` (no code by design) and ``.pth``/``.pt``/``.bin`` through
``torch.load(weights_only=True)``, with no fallback to full unpickling.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..runtime.files import atomic_write
from .card import MODEL, ModelCard
from .errors import WeightsError  # noqa: F401  (where users and callers have always found it)

CLASSIFIER_PREFIXES = ("fc.",)
TORCH_SUFFIXES = (".pth", ".pt", ".th", ".bin", ".ckpt", ".tar")
_NESTED_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "ema", "module")
# DataParallel/DDP, torch.compile, and Lightning modules that hold the network as model/net.
_STRIP_PREFIXES = ("module.", "_orig_mod.", "model.", "net.")


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                tensors[key] = f.get_tensor(key)
        return tensors, metadata
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"{path}: not a readable .safetensors file ({exc}); it may be truncated or corrupt. "
            "Re-download or re-export it."
        ) from exc


def _read_pickle_checkpoint(path: Path) -> Any:
    import argparse

    try:
        # torchvision's reference scripts and timm's train.py store their argparse.Namespace
        # under "args"; exactly that one class is let through the weights-only loader.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses anything but tensors and plain containers: never fall back.
        raise WeightsError(
            f"{path}: refused to load: the file contains Python objects other than tensors, "
            "which could run code when unpickled. Only plain state dicts are accepted; "
            f"convert it to .safetensors in a trusted environment. (torch said: "
            f"{str(exc).splitlines()[0]})"
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise WeightsError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); it may be truncated "
            "or corrupt. Re-download it."
        ) from exc


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Find the tensors in a checkpoint: a bare state dict, or one nested under a usual key."""
    for _ in range(3):
        if isinstance(obj, Mapping) and obj and all(
            isinstance(v, torch.Tensor) for v in obj.values()
        ):
            return dict(obj)
        if isinstance(obj, Mapping):
            nested = next((obj[k] for k in _NESTED_KEYS if k in obj and
                           isinstance(obj[k], Mapping)), None)
            if nested is not None:
                obj = nested
                continue
            tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
            if tensors:
                return tensors
        break
    raise WeightsError(f"{path}: holds no state dict of tensors (found {type(obj).__name__})")


def _strip_prefixes(
    state: dict[str, torch.Tensor], model_keys: set[str]
) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` (DataParallel/DDP) or ``_orig_mod.`` (torch.compile) prefix."""
    changed = True
    while changed:
        changed = False
        for prefix in _STRIP_PREFIXES:
            if state and all(k.startswith(prefix) for k in state) and not (
                set(state) & model_keys
            ):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _check_finite(state: Mapping[str, torch.Tensor], path: Path) -> None:
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightsError(f"{path}: tensor {key!r} holds NaN or infinite values; these "
                               "weights are broken (a diverged run?) and would only give NaN. "
                               "Use an earlier checkpoint or retrain")


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def refuse_url(source: str | os.PathLike[str]) -> None:
    """A URL where a weights file is expected: refused by name (``Path`` would collapse its
    ``//`` into a misleading "no such file")."""
    if isinstance(source, str) and _URL.match(source):
        raise WeightsError(f"{source}: a URL; deepres downloads weights only for "
                           "torchvision:NAME (checked by torchvision's hash) and ships its own "
                           "as deepres:NAME. Download the file, check it, and give its path")


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a weights file into ``(state_dict, metadata)`` without running code from it; every
    floating-point tensor must be finite."""
    from .published import local_path

    path = local_path(str(path)) if isinstance(path, str) else path  # deepres:NAME[.TAG]
    refuse_url(path)
    state, metadata = _read_weights(Path(path))
    _check_finite(state, Path(path))
    if MODEL not in metadata:
        from .akamaster import as_ours

        state, metadata = as_ours(state, metadata, Path(path))
    return state, metadata


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: the file is empty (0 bytes); re-download or re-export it")
    with open(path, "rb") as f:
        head = f.read(8)
    _refuse_programs(path, head)
    # By suffix; otherwise sniff: a PyTorch checkpoint is a zip archive (PK) or a pickle (0x80).
    torch_like = head.startswith(b"PK") or head[:1] == b"\x80"
    if path.suffix == ".safetensors" or (path.suffix not in TORCH_SUFFIXES and not torch_like):
        return _read_safetensors(path)
    obj = _read_pickle_checkpoint(path)
    return _extract_state_dict(obj, path), {}


def _refuse_programs(path: Path, head: bytes) -> None:
    """ONNX graphs and TorchScript programs are exports to run elsewhere, not weights: said by
    name (they would otherwise be called corrupt, or torch would advise weights_only=False)."""
    if path.suffix.lower() == ".onnx":
        raise WeightsError(f"{path}: an ONNX graph (deepres export --format onnx or int8), not "
                           "weights: `deepres eval`, `predict` and `serve` run it as --weights; "
                           "training and export need the .safetensors it was exported from")
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (OSError, zipfile.BadZipFile):
            return
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            raise WeightsError(f"{path}: a TorchScript program (deepres export --format "
                               "torchscript or cpu), not weights; run it with torch.jit.load, "
                               "or give the .safetensors it was exported from (int8 files from "
                               "deepres export --format int8 are taken as they are)")


def _apply_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path,
                 skip_classifier: bool = False) -> None:
    """Check every key and shape, then load; on any mismatch raise and leave the model as is.
    ``state``'s keys have had their wrapper prefixes stripped (``_strip_prefixes``), once."""
    own = model.state_dict()
    if skip_classifier:
        state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
        expected = {k for k in own if not k.startswith(CLASSIFIER_PREFIXES)}
    else:
        expected = set(own)
    # BN's num_batches_tracked is bookkeeping (older torchvision files lack it): keep the
    # model's own where the file has none.
    missing = sorted(k for k in expected - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(state) & set(own) if state[k].shape != own[k].shape
    )
    if missing or unexpected or wrong_shape:
        raise WeightsError(_mismatch_message(path, missing, unexpected, wrong_shape))
    model.load_state_dict(state, strict=False)  # every key was checked above


def _mismatch_message(path: Path, missing: list[str], unexpected: list[str],
                      wrong_shape: list[str]) -> str:
    def block(title: str, items: list[str]) -> str:
        shown = items[:20] + ([f"... and {len(items) - 20} more"] if len(items) > 20 else [])
        return f"  {title} ({len(items)}):\n" + "\n".join(f"    {s}" for s in shown)

    parts = [f"{path}: the weights do not fit this model; nothing was loaded."]
    if missing:
        parts.append(block("missing from the file", missing))
    if unexpected:
        parts.append(block("unexpected in the file", unexpected))
    if wrong_shape:
        parts.append(block("wrong shape", wrong_shape))
    hint = "Check the model name and options (depth, shortcut option, num_classes)"
    if any(s.startswith(CLASSIFIER_PREFIXES) for s in wrong_shape):
        hint += "; to fine-tune on other classes, load with skip_classifier=True"
    parts.append(hint + ".")
    return "\n".join(parts)


def save_weights(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    class_names: list[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the model's weights as ``.safetensors``, with its name, options and class names.

    The file is written to a temporary name, fsynced and renamed, so an existing file is
    never left half-written.
    """
    from safetensors.torch import save

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {"format": "pt"}
    args = getattr(model, "model_args", None)
    if args is not None:
        card = ModelCard(args, None, None if class_names is None else tuple(class_names))
        metadata.update(card.to_metadata())
    elif class_names is not None:
        metadata.update(ModelCard(None, None, tuple(class_names)).to_metadata())
    for k, v in (extra or {}).items():
        metadata[k] = v if isinstance(v, str) else json.dumps(v)
    blob = canonical_safetensors(save(state, metadata=metadata))
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))


def canonical_safetensors(blob: bytes) -> bytes:
    """A safetensors file's bytes with its metadata keys in sorted order: safetensors writes
    them from a hash map, in a different order each time, so the same weights would get a
    different sha256 on every write (``/v1/model``'s ``weights_sha256``, two ``--deterministic``
    runs). Only the header's order changes; its length, the tensors and their offsets do not."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:  # never: the same content in another order (kept safe all the same)
        return blob
    return blob[:8] + text.ljust(n) + blob[8 + n:]
