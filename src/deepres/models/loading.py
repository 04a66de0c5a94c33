"""Models rebuilt from weight sources: a deepres file names its model and options (checked
against a schema before anything is built); foreign files are given a model name. Every
source is read by models/source.py ``read_source``."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from torch import nn

from .hub import hub_architecture, is_hub_source
from .names import resolve
from .registry import create_model
from .source import MAX_DEPTH, Source, check_model_metadata, default_spec, read_source  # noqa: F401
from .weights import WeightsError, _apply_state, _strip_prefixes


def rebuild_from_weights(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, str]]:
    """The model a deepres ``.safetensors`` file was saved from, loaded, and the file's metadata;
    the file is read once. A Hub name (``hf-hub:``/``timm:``) is rebuilt as the model its
    config names."""
    model, source = build(path)
    return model, metadata_of(model, source)


def metadata_of(model: nn.Module, source: Source) -> dict[str, str]:
    """The source's metadata; a foreign file's under the input specification it is run with."""
    if source.described:
        return dict(source.metadata)
    return {**model.card.input_spec.to_metadata(), **source.metadata}


def build(path: str | os.PathLike[str], name: str | None = None,
          source: Source | None = None) -> tuple[nn.Module, Source]:
    """The network a weight source holds, its tensors loaded, and the source as read; the
    model's card is the source's (its description the built network's). ``name``: the
    architecture of a foreign state dict; ``source``: ``path`` already read (with ``name``)."""
    if name is None and is_hub_source(str(path)):
        name = hub_architecture(str(path))
        if name is None:
            raise WeightsError(f"{path}: its config.json names no architecture; pass --model")
    if name is not None:
        try:
            resolve(name)
        except ValueError as exc:
            raise WeightsError(str(exc)) from exc
    if source is None:
        source = read_source(path, name)
    source.tensors()  # an exported file is refused by name
    if source.described and name is None:
        assert source.card.args is not None
        model = create_model(source.card.args)
        _apply_state(model, _strip_prefixes(source.state, set(model.state_dict())),
                     Path(source.path))
    elif name is None:
        raise WeightsError(
            f"{path}: has no deepres metadata naming its model; pass --model NAME (and "
            "--classes FILE) on the command line, or in Python build it with "
            "create_model(name) and call load_weights(model, path)"
        )
    else:
        model = _foreign(source, name, Path(str(path)))
    model.card = replace(source.card, args=model.model_args,
                         input_spec=default_spec(source, model.model_name))
    return model, source


def rebuild_foreign(path: str | os.PathLike[str], name: str
                    ) -> tuple[nn.Module, dict[str, str]]:
    """Weights without deepres metadata (torchvision's, timm's, a bare state dict) as model
    ``name``: the number of classes is read from the file's classifier, and the metadata is the
    family's default input specification (``deepres models --json``) under the file's own; a
    Hub name's is its ``pretrained_cfg`` (models/hub.py)."""
    model, source = build(path, name)
    return model, metadata_of(model, source)


def _foreign(source: Source, name: str, path: Path) -> nn.Module:
    model = create_model(name)  # built once; its classifier is then sized to the file's
    assert source.state is not None
    state = _strip_prefixes(source.state, set(model.state_dict()))
    fc = state.get("fc.weight")
    if fc is None or fc.dim() != 2:
        raise WeightsError(f"{path}: has no classifier (fc.weight) to tell the classes from")
    if int(fc.shape[0]) != model.fc.out_features:
        model.reset_classifier(int(fc.shape[0]))
    _apply_state(model, state, path)
    return model


def model_from_weights(path: str | os.PathLike[str]) -> tuple[nn.Module, list[str] | None]:
    """Rebuild the model a deepres ``.safetensors`` file was saved from, with its class names;
    ``model.card`` is the file's (``model.input_spec``: its size, test resize and mean;
    ``model.class_names``: its classes)."""
    model, _ = build(path)
    return model, model.class_names
