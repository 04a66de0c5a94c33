"""The model card: one type for what a loaded model is, the only reader and writer of the
weight-file metadata keys that describe a model, with one rule for class names."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import deepres
from deepres.models.card import ModelCard, read_card, read_class_names
from deepres.models.errors import WeightsError

SRC = Path(deepres.__file__).resolve().parent
OWNERS = {SRC / "models" / "card.py", SRC / "models" / "metakeys.py", SRC / "inputspec.py"}
# A weight-file key as a string literal, or a read of the "model" key from metadata.
KEY_READS = re.compile(r"""["'](class_names|model_options|input_mean|input_std)["']|"""
                       r"""["']model["']\s+(not\s+)?in\s+meta|"""
                       r"""meta\w*(\.get\(|\[)["']model["']""")


def test_only_the_card_and_the_input_spec_spell_the_metadata_keys():
    found = [f"{p.relative_to(SRC)}:{n}: {line.strip()}"
             for p in sorted(SRC.rglob("*.py")) if p not in OWNERS
             for n, line in enumerate(p.read_text().splitlines(), 1) if KEY_READS.search(line)]
    assert not found, "metadata keys read or written outside models/card.py:\n" + \
        "\n".join(found)


def test_the_card_imports_no_torch():
    code = ("import sys; import deepres.models.card as c; "
            "print('torch' in sys.modules, c.ModelCard.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "ModelCard"]


@pytest.mark.parametrize("raw, why", [
    ('["a", "b"', "not JSON"), ('{"a": 1}', "not a list"), ('["a", 2, "c"]', "not strings"),
    ('["a", "b"]', "two names for three outputs"), ("[]", "empty")])
def test_one_rule_for_class_names_names_the_file(raw, why):
    with pytest.raises(WeightsError, match=r"w\.safetensors: metadata field 'class_names'"):
        read_class_names({"class_names": raw}, "w.safetensors", 3)


def test_a_bad_class_list_is_an_error_on_every_route(tmp_path):
    """Once silently dropped by load_weights and model_from_weights; now the same error on
    every route that reads a file, naming it."""
    model = deepres.create_model("resnet8", num_classes=3)
    path = tmp_path / "w.safetensors"
    deepres.save_weights(model, path, class_names=["a", "b", "c"],
                         extra=model.input_spec.to_metadata())
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    meta["class_names"] = json.dumps(["a", "b"])
    save_file(load_file(str(path)), str(path), metadata=meta)
    routes = [lambda: deepres.model_from_weights(path),
              lambda: deepres.load_weights(deepres.create_model("resnet8", num_classes=3), path),
              lambda: deepres.Predictor.from_weights(path, engine="torch"),
              lambda: deepres.create_model("resnet8", num_classes=3, pretrained=str(path))]
    for route in routes:
        with pytest.raises(WeightsError, match="class_names"):
            route()


def test_a_loaded_model_carries_its_card(tmp_path):
    model = deepres.create_model("resnet8", num_classes=3)
    assert model.card.name == "resnet8" and model.card.class_names is None
    path = tmp_path / "w.safetensors"
    deepres.save_weights(model, path, class_names=["x", "y", "z"],
                         extra=model.input_spec.to_metadata())
    loaded, classes = deepres.model_from_weights(path)
    card = loaded.card
    assert classes == ["x", "y", "z"] and card.class_names == ("x", "y", "z")
    assert card.args == loaded.model_args and card.input_spec is loaded.input_spec
    assert str(path) in card.origin
    assert read_card(card.to_metadata(), "again", 3).class_names == card.class_names
    loaded.reset_classifier(5)  # a new head: the old classes no longer name its outputs
    assert loaded.card.class_names is None and loaded.card.args.num_classes == 5


def test_predictor_from_a_model_in_memory_equals_the_one_from_its_file(tmp_path):
    model = deepres.create_model("resnet8", num_classes=3).eval()
    path = tmp_path / "w.safetensors"
    deepres.save_weights(model, path, class_names=["x", "y", "z"],
                         extra=model.input_spec.to_metadata())
    model.class_names = ["x", "y", "z"]
    images = [torch.randint(0, 256, (3, 40, 36), dtype=torch.uint8) for _ in range(5)]
    mem = deepres.Predictor.from_model(model, precision="fp32", batch_size=2)
    disk = deepres.Predictor.from_weights(path, precision="fp32", engine="torch")
    assert isinstance(mem.card, ModelCard) and mem.card.name == "resnet8"
    a, b = mem.predict(images, top_k=3), disk.predict(images, top_k=3)
    assert len(a) == 5
    for x, y in zip(a, b, strict=True):
        assert [p["class"] for p in x["predictions"]] == [p["class"] for p in y["predictions"]]
        for p, q in zip(x["predictions"], y["predictions"], strict=True):
            assert abs(p["probability"] - q["probability"]) < 1e-6
    with pytest.raises(ValueError, match="batch_size"):
        deepres.Predictor.from_model(model, batch_size=0)


def test_an_onnx_file_whose_class_list_disagrees_with_its_outputs_is_refused(tmp_path):
    """Fewer names than outputs once gave an IndexError in predict (a 500 per request in serve);
    more were accepted silently. The card's rule counts the graph's outputs."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from deepres.cli import main

    model = deepres.create_model("resnet8", num_classes=3)
    weights = tmp_path / "w.safetensors"
    deepres.save_weights(model, weights, class_names=["a", "b", "c"],
                         extra=model.input_spec.to_metadata())
    path = tmp_path / "m.onnx"
    assert main(["export", "--weights", str(weights), "--format", "onnx", str(path)]) == 0
    assert deepres.Predictor.from_weights(path, engine="onnxruntime").classes == ["a", "b", "c"]
    for names in (["a", "b"], ["a", "b", "c", "d"]):
        proto = onnx.load(str(path))
        for prop in proto.metadata_props:
            if prop.key == "class_names":
                prop.value = json.dumps(names)
        bad = tmp_path / f"bad{len(names)}.onnx"
        onnx.save(proto, str(bad))
        with pytest.raises(WeightsError, match=r"bad\d\.onnx: metadata field 'class_names' "
                                               r"must be a list of 3 class names"):
            deepres.Predictor.from_weights(bad, engine="onnxruntime")


def test_the_card_names_its_origin_by_file_and_sha256_or_by_name(tmp_path):
    """The origin is the file and the sha256 of the bytes loaded (a file changed later has
    another), on every route that reads a file; a name stays a name."""
    import hashlib

    from deepres.loaded import load_predictor
    from helpers import make_weights

    path = make_weights(tmp_path / "w.safetensors")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_predictor(str(path)).card.origin == f"{path} (sha256 {digest})"
    model = deepres.create_model("resnet8", num_classes=3, pretrained=str(path))
    assert model.card.origin == f"{path} (sha256 {digest})"
    make_weights(path, seed=1)  # the same name, other bytes
    again = load_predictor(str(path)).card.origin
    assert again != f"{path} (sha256 {digest})"
    assert again == f"{path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})"
    named = deepres.create_model("resnet20", pretrained="deepres:resnet20.cifar10")
    assert named.card.origin == "deepres:resnet20.cifar10"


def test_every_route_reads_a_file_into_the_same_card(tmp_path):
    """Issue 41 item 1: one function (models/source.py read_source) reads every weight source,
    so the five routes that load a file agree on its card: description, input specification,
    class names and origin."""
    from deepres.models.source import read_source
    from deepres.models.transfer import init_from

    model = deepres.create_model("resnet8", num_classes=3)
    spec = model.input_spec
    path = tmp_path / "w.safetensors"
    deepres.save_weights(model, path, class_names=["x", "y", "z"],
                         extra={**spec.to_metadata(), "input_mean": "[0.25, 0.5, 0.75]"})
    truth = read_source(path).card
    assert truth.class_names == ("x", "y", "z") and truth.args.name == "resnet8"
    assert truth.input_spec.mean.flatten().tolist() == [0.25, 0.5, 0.75]
    built = deepres.create_model("resnet8", num_classes=3)
    deepres.load_weights(built, path)
    fresh = deepres.create_model("resnet8", num_classes=3)
    init = init_from(fresh, str(path))
    cards = {"model_from_weights": deepres.model_from_weights(path)[0].card,
             "load_weights": built.card,
             "pretrained": deepres.create_model("resnet8", num_classes=3,
                                                pretrained=str(path)).card,
             "Predictor": deepres.Predictor.from_weights(path, engine="torch").card}
    for route, card in cards.items():
        assert card.args == truth.args, route
        assert card.class_names == truth.class_names, route
        assert card.origin == truth.origin, route
        assert torch.equal(card.input_spec.mean.cpu(), truth.input_spec.mean), route
        assert card.input_spec.to_metadata() == truth.input_spec.to_metadata(), route
    assert init.spec.to_metadata() == truth.input_spec.to_metadata()
    assert tuple(init.class_names) == truth.class_names


def test_only_the_source_reader_opens_weight_sources():
    """Every route goes through read_source: no other module calls the file readers."""
    readers = re.compile(r"\b(read_weights|read_metadata|_torchvision_weights|hub_spec|"
                         r"_read_safetensors|_read_pickle_checkpoint)\(")
    allowed = {SRC / "models" / n for n in ("source.py", "weights.py", "onnxread.py", "hub.py")}
    found = [f"{p.relative_to(SRC)}:{n}: {line.strip()}"
             for p in sorted(SRC.rglob("*.py")) if p not in allowed
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if readers.search(line) and not line.lstrip().startswith(("def ", "#"))]
    assert not found, "\n".join(found)
