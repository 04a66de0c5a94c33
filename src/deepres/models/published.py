"""deepres's own trained weights, loaded by name: ``deepres:NAME`` (the name's default weights,
the longest-trained ones published) or ``deepres:NAME.TAG`` (``deepres:resnet20.cifar10-medium``),
like ``torchvision:NAME[.WEIGHTS]``.

The files ship inside the package (``published/``), listed in ``published/index.json`` with
their sha256, test error and model card; ``scripts/publish_weights.py`` adds a finished run.
A file is checked against its sha256 before it is first read in a process, so a damaged
install is refused by name rather than loaded.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import WeightsError

PREFIX = "deepres:"
FOLDER = Path(__file__).with_name("published")
INDEX = FOLDER / "index.json"


@dataclass(frozen=True)
class Published:
    """One published weights file (an entry of ``index.json``)."""

    name: str  # the model name, as create_model takes it
    tag: str  # what it was trained on and at what scale: "cifar10" (the paper's full schedule)
    file: str  # in FOLDER
    sha256: str
    test_error: float  # on the data set's test split, as the model card states it
    test_images: int
    iterations: int
    scale: str  # the cifar-depth scale of its run: "full" is the paper's schedule
    default: bool  # what deepres:NAME loads
    card: str  # the model card, in FOLDER

    @property
    def source(self) -> str:
        return f"{PREFIX}{self.name}.{self.tag}"


@functools.cache
def published() -> tuple[Published, ...]:
    """Every published weights file, as ``index.json`` lists them."""
    if not INDEX.is_file():
        return ()
    return tuple(Published(**entry) for entry in json.loads(INDEX.read_text()))


def weights_for(name: str) -> list[Published]:
    """The published weights of model ``name``, its default first."""
    return sorted((p for p in published() if p.name == name), key=lambda p: not p.default)


def find(source: str) -> Published:
    """The entry ``deepres:NAME[.TAG]`` names; an unknown one is a WeightsError listing them."""
    name, _, tag = source[len(PREFIX):].partition(".")
    found = weights_for(name)
    match = [p for p in found if p.tag == tag] if tag else found[:1]
    if not match:
        known = ", ".join(p.source for p in published()) or "none"
        what = f"no weights tagged {tag!r} for {name}" if found and tag else \
            f"deepres publishes no weights for {name!r}"
        raise WeightsError(f"{source}: {what}; published: {known} (deepres models lists them)")
    return match[0]


def is_published_source(source: object) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def local_path(source: str) -> str:
    """The file behind ``deepres:NAME[.TAG]``, its sha256 checked; behind ``hf-hub:``/``timm:``
    names, the Hub's local cache (models/hub.py); any other source as it is."""
    from .hub import is_hub_source, weights_file

    if is_hub_source(source):
        return str(weights_file(source))
    if not is_published_source(source):
        return source
    entry = find(source)
    return str(_checked(entry.file, entry.sha256))


@functools.cache
def _checked(file: str, sha256: str) -> Path:
    path = FOLDER / file
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise WeightsError(f"{path}: the published weights file cannot be read ({exc}); "
                           "reinstall deepres") from exc
    if digest != sha256:
        raise WeightsError(f"{path}: sha256 {digest} is not the published {sha256}; the file "
                           "is damaged or was changed: reinstall deepres")
    return path


def _torchvision_tag(member: str) -> str:
    """timm's tag for a torchvision weights member: ``IMAGENET1K_V1`` -> ``tv_in1k``,
    ``IMAGENET1K_V2`` -> ``tv2_in1k``; others ``tv_`` and the member in lower case."""
    head, _, version = member.partition("_V")
    if head == "IMAGENET1K" and version.isdigit():
        return f"tv{version if version != '1' else ''}_in1k"
    return "tv_" + member.lower()


def pretrained_tags(name: str) -> dict[str, str]:
    """Every published weights of model ``name`` as ``{tag: source}``: deepres's own
    (``deepres:NAME.TAG``, its default first), then torchvision's (``torchvision:NAME.MEMBER``,
    tagged as timm tags them). ``NAME.TAG`` is what ``create_model`` and ``list_models(...,
    pretrained=True)`` call them."""
    tags = {p.tag: p.source for p in weights_for(name)}
    if name in _torchvision_names():
        from torchvision.models import get_model_weights

        for member in get_model_weights(name):  # aliases (DEFAULT) are not iterated
            tags.setdefault(_torchvision_tag(member.name), f"torchvision:{name}.{member.name}")
    return tags


@functools.cache
def _torchvision_names() -> frozenset[str]:
    """torchvision's model names, asked once (list_models(pretrained=True) asks per name)."""
    try:
        from torchvision.models import list_models
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return frozenset()
    return frozenset(list_models())
