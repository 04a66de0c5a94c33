"""A weight source's tensors into a network you built: :func:`load_weights` (every key must
fit: evaluation, resuming your own files) and :func:`init_from` (fine-tuning: the classifier is
kept where it fits, an RGB first convolution fitted to the model's channels). Both read the
source with models/source.py ``read_source``, so the card they leave on the model (input
specification, class names, origin) is the one every other route gives."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from ..inputspec import InputSpec
from .adapt import adapt_first_conv
from .description import ModelArgs
from .source import Source, read_source
from .weights import _apply_state, _strip_prefixes


def load_weights(model: nn.Module, path: str | os.PathLike[str], *,
                 skip_classifier: bool = False) -> dict[str, str]:
    """Load weights into ``model`` from ``.safetensors`` or ``.pth``/``.pt``; return metadata.

    A mismatch raises :class:`WeightsError` listing missing, unexpected and wrong-shaped keys,
    and leaves the model unchanged. ``skip_classifier=True`` loads everything but the final
    ``fc`` layer (for fine-tuning on other classes).
    """
    source = _tensors(path, getattr(model, "model_name", None))
    where = Path(source.path or str(path))
    _warn_stride_mismatch(model, source.card.args, where)
    assert source.state is not None
    _apply_state(model, _strip_prefixes(source.state, set(model.state_dict())), where,
                 skip_classifier)
    card = source.card
    if source.described and card.input_spec is not None:  # a deepres file: its own input
        keep = model.card
        names = keep.class_names if skip_classifier else card.class_names
        model.card = replace(card, args=keep.args, class_names=names)
    return source.metadata


def _tensors(path: str | os.PathLike[str], model: str | None) -> Source:
    source = read_source(path, model)
    source.tensors()  # an exported file is refused by name
    return source


def _warn_stride_mismatch(model: nn.Module, saved: ModelArgs | None, path: Path) -> None:
    """Bottleneck weights trained with the stride in the 3x3 (torchvision's, timm's) have the
    same shapes as stride-in-1x1 ones but compute something else in the other model."""
    args = getattr(model, "model_args", None)
    ours = bool(args is not None and args.stride_in_1x1)
    theirs = bool(saved is not None and saved.stride_in_1x1)
    if ours != theirs:
        where = "1x1" if theirs else "3x3 (as torchvision and timm)"
        warnings.warn(f"{path}: these weights were trained with the downsampling stride in the "
                      f"{where}, but the model puts it in the {'1x1' if ours else '3x3'}; they "
                      "load (the shapes agree) but the outputs will differ. Build the model "
                      f"with stride_in_1x1={theirs} to match", UserWarning, stacklevel=3)


@dataclass(frozen=True)
class Init:
    """What :func:`init_from` did and what the source says of its inputs."""

    message: str  # one line: the source, and whether the classifier was kept
    # The input the weights expect: a deepres file's own specification; torchvision's for its
    # published weights and for foreign ImageNet-family state dicts; None where the source
    # says nothing (a foreign CIFAR-family file): the data's own mean then.
    spec: InputSpec | None
    spec_origin: str  # where ``spec`` came from, for the line that says it
    class_names: list[str] | None = None


def init_from(model: nn.Module, source: str) -> Init:
    """Start ``model`` from the weights in ``source`` for fine-tuning: a deepres ``.safetensors``,
    a torchvision or timm state dict (``.pth``/``.safetensors``, DDP/Lightning prefixes and
    reference-script checkpoints included), or ``torchvision:NAME[.WEIGHTS]`` (torchvision's
    published weights through its own API, with its download hash check). The classifier is
    kept when its shape fits, else left new. The source decides the input specification, the
    same way on every route (see :class:`Init`)."""
    read = _tensors(source, str(getattr(model, "model_name", "")) or None)
    path = Path(read.path or source)
    if read.path:  # torchvision: names carry no stride option
        _warn_stride_mismatch(model, read.card.args, path)
    own = model.state_dict()  # an RGB first convolution fitted to the model's in_chans
    assert read.state is not None
    state = adapt_first_conv(_strip_prefixes(read.state, set(own)), own)
    fc = state.get("fc.weight")
    new_head = fc is not None and fc.shape != own["fc.weight"].shape
    _apply_state(model, state, path, skip_classifier=new_head or fc is None)
    message = (f"initialised from {source}; new classifier head: {fc.shape[0]} -> "
               f"{own['fc.weight'].shape[0]} classes" if new_head
               else f"initialised from {source}, classifier included")
    classes = read.card.class_names
    return Init(message, read.card.input_spec, read.spec_origin,
                None if classes is None else list(classes))
