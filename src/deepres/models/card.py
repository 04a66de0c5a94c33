"""A model card: everything deepres knows of a loaded model besides its tensors.

One frozen type holds the model description (:class:`~deepres.models.description.ModelArgs`),
the input specification, the class names, the published tag and the origin (the file and its
sha256, or the name it was loaded by). It is the only code that reads or writes the weight-file
metadata keys that describe a model (``model``, ``model_options``, ``class_names``, ``tag``,
``origin``; the input specification's own keys are read and written by
:class:`~deepres.inputspec.InputSpec`, through here), with one rule for class names: absent is
None, present must be a JSON list of strings, one per classifier output, else an error that
names the file. Nothing is silently dropped.

Importing this module imports no torch (the input specification is built only when a card is
read), so tools that only look at cards start at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .errors import WeightsError

# The weight-file metadata keys a card owns (named in metakeys.py; InputSpec owns its own).
from .metakeys import CARD_KEYS, CLASS_NAMES, MODEL, MODEL_OPTIONS, ORIGIN, TAG  # noqa: F401

if TYPE_CHECKING:  # torch-free at import time
    from ..inputspec import InputSpec
    from .description import ModelArgs

MAX_CLASSES = 1_000_000  # beyond this a class list is not believed


@dataclass(frozen=True, eq=False)
class ModelCard:
    """What a loaded model is (see the module's docstring). ``args`` is None for a network whose
    file does not describe it (an exported ONNX file without a model name); ``input_spec`` is
    None only where the source says nothing of its inputs (a foreign CIFAR-family state dict:
    the data's own mean is then used)."""

    args: ModelArgs | None
    input_spec: InputSpec | None
    class_names: tuple[str, ...] | None = None
    tag: str | None = None
    origin: str = ""  # "FILE (sha256 HEX)", or the name it was loaded by

    def __post_init__(self) -> None:
        # A grayscale network (in_chans 1) reads the luma of its RGB input, whatever RGB
        # specification its weights came with (torchvision's, adapted as timm does).
        spec, args = self.input_spec, self.args
        if spec is not None and args is not None and args.in_chans == 1 and spec.channels != 1:
            object.__setattr__(self, "input_spec", replace(spec, channels=1))

    @property
    def name(self) -> str | None:
        return self.args.name if self.args is not None else None

    def with_classes(self, names: Sequence[str] | None) -> ModelCard:
        return replace(self, class_names=None if names is None else tuple(names))

    def with_spec(self, spec: InputSpec | None) -> ModelCard:
        return replace(self, input_spec=spec)

    def to_metadata(self) -> dict[str, str]:
        """The weight-file fields (JSON strings, but ``model``) that :func:`read_card` reads."""
        meta: dict[str, str] = {}
        if self.args is not None:
            meta[MODEL] = self.args.name
            meta[MODEL_OPTIONS] = json.dumps(self.args.saved_options())
        if self.input_spec is not None:
            meta.update(self.input_spec.to_metadata())
        if self.class_names is not None:
            meta[CLASS_NAMES] = json.dumps(list(self.class_names))
        if self.tag is not None:
            meta[TAG] = self.tag
        return meta


def origin_of(source: str) -> str:
    """What a card says a model came from: a local file as ``"FILE (sha256 HEX)"`` (the bytes
    it was loaded from, whatever later becomes of the file); a name (``deepres:``,
    ``torchvision:``, ``hf-hub:``), or a path that is no file, as it is."""
    import os

    if ":" in source.split("/")[0] or not os.path.isfile(source):
        return source
    from ..runtime.files import file_sha256

    return f"{source} (sha256 {file_sha256(source)})"


def describes_input(meta: Mapping[str, Any]) -> bool:
    """Whether a file's metadata gives its input specification (deepres writes a mean)."""
    return "input_mean" in meta


def read_class_names(meta: Mapping[str, Any], where: str, outputs: int | None = None
                     ) -> tuple[str, ...] | None:
    """The one rule for class names: absent is None; present must be a JSON list of strings
    (``outputs`` of them where the classifier's size is known), else a WeightsError that names
    ``where`` and the field."""
    if CLASS_NAMES not in meta:
        return None
    raw = meta[CLASS_NAMES]
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        value = None
    want = (f"a list of {outputs} class names (one per classifier output)" if outputs
            else "a list of class names")
    ok = (isinstance(value, list) and 0 < len(value) <= MAX_CLASSES
          and all(isinstance(c, str) for c in value)
          and (outputs is None or len(value) == outputs))
    if not ok:
        shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:57] + "..."  # one line
        raise WeightsError(f"{where}: metadata field {CLASS_NAMES!r} must be {want}, not "
                           f"{shown}")
    return tuple(value)


def read_model_args(meta: Mapping[str, str], where: str) -> ModelArgs | None:
    """The model description a file's ``model`` and ``model_options`` give (None: no ``model``
    field), checked against :class:`ModelArgs`; errors name the file and the field."""
    from .description import ModelArgs
    from .names import resolve

    if MODEL not in meta:
        return None
    name = meta[MODEL]
    try:
        resolve(name)
    except ValueError as exc:
        raise WeightsError(f"{where}: metadata field 'model': {exc}") from exc
    options: Any = {}
    if MODEL_OPTIONS in meta:
        try:
            options = json.loads(meta[MODEL_OPTIONS])
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"{where}: metadata field {MODEL_OPTIONS!r} is not valid JSON "
                               f"({exc})") from exc
    try:
        return ModelArgs.from_saved(name, options)
    except ValueError as exc:
        raise WeightsError(f"{where}: metadata field {exc}") from exc


def read_input_spec(meta: Mapping[str, Any], where: str, model: str | None
                    ) -> InputSpec | None:
    """The input specification a file's metadata gives, sizes it lacks from the model family's
    defaults (files written before sizes were saved); None where it has no mean."""
    from ..inputspec import InputSpec
    from .names import default_input_spec

    if not describes_input(meta):
        return None
    return InputSpec.from_metadata(meta, where, default_input_spec(str(model)))


def read_card(meta: Mapping[str, str], where: str, outputs: int | None = None,
              origin: str = "") -> ModelCard:
    """A file's card from its metadata (``where`` names it in errors; ``outputs``: its
    classifier's size, where known, for the class-name rule)."""
    args = read_model_args(meta, where)
    name = args.name if args is not None else meta.get(MODEL)
    return ModelCard(args, read_input_spec(meta, where, name),
                     read_class_names(meta, where, outputs), meta.get(TAG), origin or where)
