"""deepres's own trained weights by name: create_model(pretrained=True), deepres:NAME[.TAG]
wherever a weights file or --init is taken, torch.hub from a local clone, and the sha256 check."""

import json
import shutil
from pathlib import Path

import pytest
import torch

import deepres
from deepres.models import published
from deepres.models.weights import WeightsError, read_weights

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def test_every_published_file_is_listed_with_its_card_and_checks():
    entries = published.published()
    assert {p.name for p in entries} >= {"resnet20", "resnet56"}
    for p in entries:
        assert (published.FOLDER / p.card).is_file()
        assert f"{100 * p.test_error:.2f}%" in (published.FOLDER / p.card).read_text()
        assert Path(published.local_path(p.source)).is_file()
    for name in {p.name for p in entries}:  # exactly one default per name
        assert sum(p.default for p in published.weights_for(name)) == 1


def test_the_readme_table_of_published_weights_is_the_index():
    """The docs' table (docs/published-weights.md) names every published file once, with the
    index's test error and tag."""
    page = (ROOT / "docs" / "published-weights.md").read_text()
    rows = [x.split("|") for x in page.splitlines() if x.startswith("| `deepres:")]
    said = {r[1].strip(" `"): (r[2].strip(), r[4].strip(" `")) for r in rows
            if r[2].strip().endswith("%")}  # the table of files, not of error messages
    found = {}
    for source in said:
        entry = published.find(source)
        found[entry.source] = (f"{100 * entry.test_error:.2f}%", entry.tag)
        assert said[source] == found[entry.source], source
    assert set(found) == {p.source for p in published.published()}


def test_pretrained_true_loads_the_default_published_weights():
    entry = published.weights_for("resnet20")[0]
    model = deepres.create_model("resnet20", pretrained=True)
    state, meta = read_weights(published.FOLDER / entry.file)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert model.class_names[0] == "airplane"
    # The same through a tag, and through the name alone.
    tagged = deepres.create_model("resnet20", pretrained=entry.source)
    plain = deepres.create_model("resnet20", pretrained="deepres:resnet20")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), tagged.eval()(x))
        assert torch.equal(model(x), plain.eval()(x))


def test_unknown_names_and_tags_are_refused_with_what_exists():
    with pytest.raises(WeightsError, match="no weights tagged 'nope'.*deepres:resnet20"):
        published.local_path("deepres:resnet20.nope")
    with pytest.raises(WeightsError, match="publishes no weights for 'resnet32'"):
        deepres.create_model("resnet32", pretrained="deepres:resnet32")
    with pytest.raises(WeightsError, match="neither deepres nor torchvision"):
        deepres.create_model("resnet32", pretrained=True)


def test_a_damaged_published_file_is_refused(tmp_path, monkeypatch):
    entry = published.weights_for("resnet20")[0]
    shutil.copytree(published.FOLDER, tmp_path / "published")
    blob = bytearray((tmp_path / "published" / entry.file).read_bytes())
    blob[-1] ^= 1
    (tmp_path / "published" / entry.file).write_bytes(bytes(blob))
    monkeypatch.setattr(published, "FOLDER", tmp_path / "published")
    published._checked.cache_clear()
    try:
        with pytest.raises(WeightsError, match="sha256 .* is not the published"):
            deepres.create_model("resnet20", pretrained=True)
    finally:
        published._checked.cache_clear()


def test_torch_hub_loads_by_name_from_a_local_clone():
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    assert {"resnet20", "resnet56", "resnet50"} <= set(dir(hub))  # an entry point per model
    model = torch.hub.load(str(ROOT), "resnet20", source="local", pretrained=True)
    ref = deepres.create_model("resnet20", pretrained=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 ref.state_dict().values(), strict=True))


def test_init_and_predict_take_a_published_name(tiny_data, tmp_path, capsys):
    from deepres.cli import main

    run = tmp_path / "ft"
    assert main(["train", "--model", "resnet20", "--data", str(tiny_data), "--iterations", "2",
                 "--batch-size", "8", "--init", "deepres:resnet20", "--run-dir", str(run),
                 "--precision", "fp32"]) == 0
    assert "initialised from deepres:resnet20" in capsys.readouterr().err
    img = next(Path(tiny_data).rglob("*.png"))
    assert main(["predict", "--weights", "deepres:resnet56", str(img), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["predictions"][0]["class"] in published_classes()


def published_classes():
    return ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
            "truck"]


@pytest.mark.slow
@pytest.mark.skipif(not ARCHIVE.exists(), reason="the CIFAR-10 archive is not at hand")
@pytest.mark.parametrize("entry", published.published(), ids=lambda p: p.source)
def test_eval_reproduces_each_cards_test_error_to_the_digit(entry):
    from deepres.evaluate.runner import run_eval

    r = run_eval([entry.source], str(ARCHIVE), precision="fp32")
    assert r["images"] == entry.test_images == 10_000
    assert f"{100 * r['top1_error']:.2f}" == f"{100 * entry.test_error:.2f}"


def test_list_models_filters_by_pattern_and_by_published_weights():
    assert deepres.list_models("resnet1*") == ["resnet18", "resnet101", "resnet152", "resnet14",
                                               "resnet110", "resnet1202"]
    assert deepres.list_models("*wide*") == ["wide_resnet50_2", "wide_resnet101_2"]
    # with pretrained=True, each published weights as NAME.TAG (timm's), which create_model
    # loads by that name
    with_weights = deepres.list_models(pretrained=True)
    assert {"resnet20.cifar10", "resnet56.cifar10-medium", "resnet50.tv_in1k",
            "resnet50.tv2_in1k", "resnext50_32x4d.tv_in1k"} <= set(with_weights)
    bases = {n.partition(".")[0] for n in with_weights}
    assert "resnet32" not in bases and "plain20" not in bases
    assert deepres.list_models("resnet2*", pretrained=True) == ["resnet20.cifar10",
                                                               "resnet20.cifar10-medium"]
    assert deepres.list_models("*.cifar10-medium", pretrained=True) == ["resnet20.cifar10-medium",
                                                               "resnet56.cifar10-medium"]
    assert deepres.list_models("resnet*", exclude_filters=["resnet1*", "resnet[2-9]*"]) == []
    model = deepres.create_model("resnet20.cifar10-medium", pretrained=True)
    assert model.card.tag == "cifar10-medium" and model.num_classes == 10
    assert model.pretrained_cfg["origin"] == "deepres:resnet20.cifar10-medium"
    with pytest.raises(ValueError, match=r"resnet20\.cifar10, resnet20\.cifar10-medium"):
        deepres.create_model("resnet20.imagenet", pretrained=True)


def test_deepres_models_filters_on_the_command_line(capsys):
    from deepres.cli import main

    assert main(["models", "resnet5*", "*wide*", "--json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert names == ["resnet50", "wide_resnet50_2", "wide_resnet101_2", "resnet56"]
    assert main(["models", "resnet2*", "--pretrained", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["tags"]) for r in rows] == [("resnet20", ["cifar10", "cifar10-medium"])]
    assert main(["models", "nothing*"]) == 2
    assert "no model matches nothing*" in capsys.readouterr().err
