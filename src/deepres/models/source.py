"""Every weight source read one way: :func:`read_source` turns a source into its
:class:`~deepres.models.card.ModelCard` and either its tensors or the file an engine runs.

Sources: a deepres ``.safetensors``; a foreign state dict (``.pth``/``.pt``/``.th``/``.bin``/
``.ckpt``/``.safetensors`` from torchvision, timm, akamaster, a Lightning or DDP checkpoint);
``deepres:NAME[.TAG]`` (the published file, sha256-checked); ``torchvision:NAME[.WEIGHTS]``
(through torchvision's API and its hash check); ``hf-hub:``/``timm:`` names (the Hub's local
cache); an exported ONNX or int8 ONNX file; and a TorchScript int8 file (the format before ONNX
int8). Building a network from the tensors (models/loading.py, ``init_from``, ``load_weights``)
and running an engine file (loaded/) are the callers' business; what the source *is* is
decided here only, the same way on every route, so that ``create_model(pretrained=...)``,
``deepres train --init``, ``load_weights``, ``model_from_weights`` and ``Predictor`` agree.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..inputspec import InputSpec
from .card import MODEL, ModelCard, describes_input, origin_of, read_card, read_model_args
from .description import ModelArgs
from .errors import WeightsError

WEIGHTS, ONNX, TORCHSCRIPT_INT8 = "weights", "onnx", "torchscript-int8"
INT8_FORMAT = "deepres-int8"  # a TorchScript int8 file's metadata says so
METADATA_NAME = "deepres.json"  # ... in the archive's extra/ folder
MAX_INT8_METADATA = 16 << 20  # bytes: a larger metadata member is not believed


@dataclass(frozen=True)
class Source:
    """A weight source, read: its card and its tensors (``format`` "weights") or the file an
    engine runs ("onnx", "torchscript-int8")."""

    card: ModelCard
    format: str = WEIGHTS
    state: dict[str, torch.Tensor] | None = None
    engine_file: str | None = None
    # The file's own metadata fields (strings), as read: what is written from a loaded model
    # (export, precise BN) carries them on without reading the file again.
    metadata: dict[str, str] = field(default_factory=dict)
    described: bool = False  # the file names its model (deepres metadata): card.args is set
    spec_origin: str = ""  # where card.input_spec came from, as a message says it
    onnx_input: list[object] | None = None  # an ONNX graph's input shape (ints and names)
    path: str = ""  # the local file read ("" for torchvision: names)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors, or an error saying that an exported file is run, not trained from."""
        if self.state is None:
            what = ("an ONNX graph (deepres export --format onnx or int8)" if self.format == ONNX
                    else "a TorchScript int8 program (deepres export --format int8)")
            raise WeightsError(f"{self.path}: {what}, not weights: `deepres eval`, `predict` "
                               "and `serve` run it as --weights; training and export need the "
                               ".safetensors it was exported from")
        return self.state

    @property
    def classifier_rows(self) -> int | None:
        """The number of outputs of the tensors' classifier (None: none, or an engine file)."""
        fc = _classifier(self.state or {})
        return int(fc.shape[0]) if fc is not None else None


def read_source(source: str | os.PathLike[str], model: str | None = None) -> Source:
    """Read ``source`` (see the module's docstring) without running code from it. ``model``
    names the architecture of a foreign state dict (its input specification then follows the
    model's family: torchvision's ImageNet preprocessing for the ImageNet family, none for the
    CIFAR family); a Hub name's is its config's. Errors are WeightsError naming the source."""
    from .hub import hub_architecture, hub_spec, is_hub_source
    from .onnxread import is_onnx_file
    from .published import local_path
    from .weights import read_weights, refuse_url

    text = str(source)
    refuse_url(text)
    if text.startswith("torchvision:"):
        return _torchvision(text)
    if is_hub_source(text):
        state, meta = read_weights(text)
        hub = hub_spec(text)
        if hub is not None and MODEL not in meta:  # timm's pretrained_cfg
            return Source(ModelCard(None, hub, origin=text), state=state, metadata=meta,
                          spec_origin=f"{text}'s pretrained_cfg", path=text)
        return _weights(text, text, state, meta, model or hub_architecture(text))
    path = local_path(text)  # deepres:NAME[.TAG]: the published file, its sha256 checked
    if is_onnx_file(path):
        return _onnx(path)
    member = _int8_member(path)
    if member is not None:
        return _torchscript_int8(path, member)
    state, meta = read_weights(Path(path))
    return _weights(text, path, state, meta, model)


def _weights(source: str, path: str, state: dict[str, torch.Tensor], meta: dict[str, str],
             model: str | None) -> Source:
    """Tensors from a file (or a Hub snapshot): a deepres file's own card, or a foreign one's
    as the family of ``model`` implies."""
    from .names import default_input_spec

    fc = _classifier(state)
    rows = int(fc.shape[0]) if fc is not None else None
    if MODEL in meta:  # a deepres file (or one converted to ours): it describes itself
        args = check_model_metadata(meta, state, Path(path))
        card = replace(read_card(meta, path, rows, origin_of(source)), args=args)
        return Source(card, state=state, metadata=meta, described=True,
                      spec_origin=f"{path}'s metadata", path=path)
    if model is not None and _family(model) == "imagenet":  # torchvision's, timm's, bare
        card = ModelCard(None, default_input_spec(model), origin=origin_of(source))
        return Source(card, state=state, metadata=meta, path=path,
                      spec_origin="torchvision's ImageNet weights (assumed)")
    return Source(ModelCard(None, None, origin=origin_of(source)), state=state, metadata=meta,
                  spec_origin="no specification in the file", path=path)


def _classifier(state: dict[str, torch.Tensor]) -> torch.Tensor | None:
    fc = state.get("fc.weight", state.get("module.fc.weight"))
    return fc if fc is not None and fc.dim() == 2 else None


def _family(name: str) -> str | None:
    from .names import resolve

    try:
        return resolve(name).family
    except ValueError:  # a name no registry knows
        return None


def _torchvision(source: str) -> Source:
    """``torchvision:resnet50`` (its DEFAULT weights) or ``torchvision:resnet50.IMAGENET1K_V1``,
    through torchvision's ``get_state_dict`` (download with hash check into the torch hub cache,
    or the file already there: this machine has no internet, so tests place one)."""
    from torchvision.models import get_model_weights

    from ..inputspec import from_torchvision_transforms

    name, _, which = source.split(":", 1)[1].partition(".")
    try:
        enum = get_model_weights(name)
        weights = enum[which] if which else enum.DEFAULT
    except (ValueError, KeyError) as exc:
        raise WeightsError(f"{source}: torchvision has no weights by that name ({exc})") from exc
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as exc:
        raise WeightsError(f"{source}: could not get {weights.url} ({exc}); with no internet, "
                           "put the file in torch's hub cache (torch.hub.get_dir()/checkpoints)"
                           ) from exc
    spec = from_torchvision_transforms(weights.transforms())
    classes = tuple(weights.meta.get("categories", [])) or None
    return Source(ModelCard(None, spec, classes, origin=source), state=dict(state),
                  spec_origin=f"{source}'s published transforms")


def _onnx(path: str) -> Source:
    """An exported ONNX file: its card from ``metadata_props`` (one class name per output)."""
    from .onnxread import read_metadata

    meta, shape, outputs = read_metadata(path)
    if not describes_input(meta):
        raise WeightsError(f"{path}: an ONNX file without deepres's metadata (no input "
                           "specification); give deepres the file `deepres export` wrote, or "
                           "run this one with ONNX Runtime directly")
    card = read_card(meta, path, outputs, origin_of(path))
    spec = card.input_spec
    assert spec is not None
    if len(shape) != 4 or (isinstance(shape[2], int) and shape[2] != spec.input_size):
        raise WeightsError(f"{path}: the graph's input is {shape}, not N x 3 x "
                           f"{spec.input_size} x {spec.input_size} as its metadata says")
    return Source(card, ONNX, engine_file=path, metadata=meta, described=card.args is not None,
                  spec_origin=f"{path}'s metadata", onnx_input=shape, path=path)


def is_int8_file(path: str | os.PathLike[str]) -> bool:
    """A TorchScript archive that holds deepres int8 metadata (checked without loading it)."""
    return _int8_member(path) is not None


def _int8_member(path: str | os.PathLike[str]) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            return next((n for n in z.namelist() if n.endswith("/extra/" + METADATA_NAME)),
                        None)
    except (OSError, zipfile.BadZipFile):
        return None


def _torchscript_int8(path: str, member: str) -> Source:
    """A TorchScript int8 file's card, from the metadata beside its program (not loaded)."""
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(member)
            if info.file_size > MAX_INT8_METADATA:
                raise WeightsError(f"{path}: its {METADATA_NAME} is {info.file_size:,} bytes; "
                                   "not a deepres int8 file")
            raw = json.loads(z.read(info) or b"{}")
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise WeightsError(f"{path}: its {METADATA_NAME} cannot be read ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != INT8_FORMAT:
        raise WeightsError(f"{path}: not a deepres int8 file (no {METADATA_NAME})")
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    n = raw.get("num_classes")
    if not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1_000_000):
        raise WeightsError(f"{path}: metadata field 'num_classes' must be a positive "
                           f"integer, not {n!r}")
    if not describes_input(meta):
        raise WeightsError(f"{path}: has no input mean; it was not written by `deepres train`")
    card = read_card(meta, path, n, origin_of(path))
    return Source(replace(card, args=None), TORCHSCRIPT_INT8, engine_file=path, metadata=meta,
                  spec_origin=f"{path}'s metadata", path=path)


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


def default_spec(source: Source, model: str) -> InputSpec:
    """The source's input specification, else (a foreign file) the family default of
    ``model``: what a network built to run it reads."""
    from .names import default_input_spec

    return source.card.input_spec or default_input_spec(model)
