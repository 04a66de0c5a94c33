"""Models rebuilt from weights files: a deepres file names its model and options (checked
against a schema before anything is built); foreign files are given a model name."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from .card import MODEL, read_card, read_model_args
from .description import ModelArgs
from .hub import hub_architecture, hub_spec, is_hub_source
from .names import default_input_spec, resolve
from .registry import create_model
from .weights import WeightsError, _apply_state, _strip_prefixes, read_weights


def rebuild_from_weights(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, str]]:
    """The model a deepres ``.safetensors`` file was saved from, loaded, and the file's metadata;
    the file is read once. A Hub name (``hf-hub:``/``timm:``) is rebuilt as the model its
    config names."""
    if is_hub_source(str(path)):
        arch = hub_architecture(str(path))
        if arch is None:
            raise WeightsError(f"{path}: its config.json names no architecture; pass --model")
        return rebuild_foreign(str(path), arch)
    path = Path(path)
    state, metadata = read_weights(path)
    if MODEL not in metadata:
        raise WeightsError(
            f"{path}: has no deepres metadata naming its model; pass --model NAME (and "
            "--classes FILE) on the command line, or in Python build it with "
            "create_model(name) and call load_weights(model, path)"
        )
    model = create_model(check_model_metadata(metadata, state, path))
    _apply_state(model, _strip_prefixes(state, set(model.state_dict())), path)
    return model, metadata


def rebuild_foreign(path: str | os.PathLike[str], name: str
                    ) -> tuple[nn.Module, dict[str, str]]:
    """Weights without deepres metadata (torchvision's, timm's, a bare state dict) as model
    ``name``: the number of classes is read from the file's classifier, and the metadata is the
    family's default input specification (``deepres models --json``) under the file's own; a
    Hub name's is its ``pretrained_cfg`` (models/hub.py)."""
    try:
        resolve(name)
    except ValueError as exc:
        raise WeightsError(str(exc)) from exc
    hub = hub_spec(str(path)) if is_hub_source(str(path)) else None
    state, metadata = read_weights(str(path) if is_hub_source(str(path)) else Path(path))
    path = Path(path)
    model = create_model(name)  # built once; its classifier is then sized to the file's
    state = _strip_prefixes(state, set(model.state_dict()))
    fc = state.get("fc.weight")
    if fc is None or fc.dim() != 2:
        raise WeightsError(f"{path}: has no classifier (fc.weight) to tell the classes from")
    if int(fc.shape[0]) != model.fc.out_features:
        model.reset_classifier(int(fc.shape[0]))
    _apply_state(model, state, path)
    return model, {**(hub or default_input_spec(name)).to_metadata(), **metadata}


MAX_DEPTH = 10_000  # ResNet-1202 is the paper's deepest; beyond this a file is not believed


def check_model_metadata(metadata: Mapping[str, str], state: Mapping[str, torch.Tensor],
                         path: Path) -> ModelArgs:
    """The model description of a deepres file (its name and options, read by the card),
    checked against the file's own tensors before anything is built; errors name the file and
    the field."""
    args = read_model_args(metadata, str(path))
    assert args is not None  # the caller checked that the file names its model
    if args.spec.depth > MAX_DEPTH:
        raise WeightsError(f"{path}: metadata field 'model': depth {args.spec.depth} is beyond "
                           f"{MAX_DEPTH}; the file is not a deepres model")
    fc = state.get("fc.weight")
    n = args.num_classes
    if n is not None and fc is not None and fc.dim() == 2 and fc.shape[0] != n:
        raise WeightsError(f"{path}: metadata field 'model_options.num_classes' is {n}, but "
                           f"the file's classifier has {fc.shape[0]} outputs")
    return args


def model_from_weights(path: str | os.PathLike[str]) -> tuple[nn.Module, list[str] | None]:
    """Rebuild the model a deepres ``.safetensors`` file was saved from, with its class names;
    ``model.card`` is the file's (``model.input_spec``: its size, test resize and mean;
    ``model.class_names``: its classes)."""
    model, metadata = rebuild_from_weights(path)
    adopt_card(model, metadata, str(path))
    return model, model.class_names


def adopt_card(model: nn.Module, metadata: Mapping[str, str], where: str) -> None:
    """The file's card (input specification, class names, tag, origin) set on ``model``, whose
    description it keeps; a malformed field is an error naming ``where``."""
    card = read_card(metadata, where, getattr(model.fc, "out_features", None), where)
    model.card = replace(card, args=model.model_args,
                         input_spec=card.input_spec or model.input_spec)
