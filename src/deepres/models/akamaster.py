"""akamaster/pytorch_resnet_cifar10's state dicts, read as deepres CIFAR ResNets.

Their files (``resnet20-12fca82f.th`` ...) hold ``{"state_dict": {"module.conv1.weight", ...,
"module.linear.weight"}, "best_prec1": ...}``: the same network as our ``resnetN`` with option A
(§4.1), with two differences in layout. The classifier is ``linear`` (ours ``fc``), and their
option A pads the new channels on both sides of the identity (``F.pad(..., (P/4, P/4))``: the
identity sits in channels ``[P/4, 3P/4)``) where ours pads at the end (``[0, P/2)``). So every
stage after the first carries its residual stream in another channel order; loading permutes
those channels (the blocks' second convolution and batch norm, the next convolution's input
channels and the classifier's columns) so that our model computes their function exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..inputspec import InputSpec

# Their trainer's transforms: ToTensor() then Normalize(ImageNet mean, std); no resize, 32x32.
INPUT_SPEC_FIELDS = {"input_size": 32, "test_resize": 32,
                     "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_BLOCK = re.compile(r"^layer([123])\.(\d+)\.")


def input_spec() -> InputSpec:
    return InputSpec(**INPUT_SPEC_FIELDS)


def is_akamaster(state: Mapping[str, torch.Tensor]) -> bool:
    """A CIFAR ResNet in their layout: ``linear`` classifier, three stages, a 16-channel stem,
    no projection shortcuts (option A)."""
    keys = {k.removeprefix("module.") for k in state}
    conv1 = state.get("module.conv1.weight", state.get("conv1.weight"))
    return ("linear.weight" in keys and "fc.weight" not in keys and
            any(k.startswith("layer3.") for k in keys) and
            not any(k.startswith("layer4.") or ".shortcut." in k for k in keys) and
            conv1 is not None and tuple(conv1.shape) == (16, 3, 3, 3))


def _blocks_per_stage(state: Mapping[str, torch.Tensor]) -> int:
    counts = {s: 1 + max((int(m[2]) for k in state if (m := _BLOCK.match(k)) and m[1] == s),
                         default=-1) for s in "123"}
    if len(set(counts.values())) != 1 or counts["1"] < 1:
        raise ValueError(f"stages of unequal depth {sorted(counts.items())}")
    return counts["1"]


def stage_orders(widths: tuple[int, ...] = (16, 32, 64)) -> list[torch.Tensor]:
    """For each stage, ``order[j]``: the channel of their residual stream that our channel ``j``
    holds. Ours keeps the previous stage's channels first, then the new zero-padded ones; theirs
    puts the previous ones at ``P/4`` and the zeros on both sides."""
    orders = [torch.arange(widths[0])]
    for prev, width in zip(widths, widths[1:], strict=False):
        pad = width // 4
        if prev + 2 * pad != width:
            raise ValueError(f"option A from {prev} to {width} channels is not {pad} each side")
        kept = orders[-1] + pad  # the identity: their channel i of the last stage, moved by pad
        zeros = torch.cat([torch.arange(pad), torch.arange(pad + prev, width)])
        orders.append(torch.cat([kept, zeros]))
    return orders


def to_deepres(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Their state dict as ours (channels permuted, ``linear`` renamed ``fc``) and our model's
    name (``resnet{6n+2}``)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    n = _blocks_per_stage(state)
    orders = stage_orders()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _BLOCK.match(key)
        if m is None:
            if key == "linear.weight":
                out["fc.weight"] = value[:, orders[2]]
            else:
                out[key.replace("linear.", "fc.")] = value
            continue
        stage, index = int(m[1]) - 1, int(m[2])
        order_in = orders[stage - 1] if index == 0 and stage > 0 else orders[stage]
        rest = key[m.end():]
        if rest == "conv1.weight":
            value = value[:, order_in]
        elif rest == "conv2.weight" or (rest.startswith("bn2.") and value.dim() == 1):
            value = value[orders[stage]]
        out[key] = value.contiguous()
    return out, f"resnet{6 * n + 2}"


def as_ours(state: dict[str, torch.Tensor], metadata: dict[str, str], path: Path
            ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A file in their layout as ours, with the card their trainer implies (the model, their
    input normalisation, CIFAR-10's classes); any other file as it is."""
    from .card import ModelCard
    from .description import ModelArgs
    from .errors import WeightsError

    if not is_akamaster(state):
        return state, metadata
    try:
        state, name = to_deepres(state)
    except (ValueError, IndexError) as exc:
        raise WeightsError(f"{path}: looks like akamaster's CIFAR ResNet but {exc}") from exc
    args = ModelArgs(name, num_classes=int(state["fc.weight"].shape[0])).settled()
    classes = CIFAR10_CLASSES if args.num_classes == 10 else None
    return state, {**metadata, **ModelCard(args, input_spec(), classes).to_metadata()}
