"""One truth about a model's input (deepres/inputspec.py): the source of the weights decides
the input specification the same way on every route, a flag overrides it, and small images can
be fine-tuned at the weights' resolution."""

import json

import numpy as np
import pytest
import torch
import torchvision
from safetensors import safe_open
from torchvision.models import ResNet18_Weights

from deepres.cli import main
from deepres.evaluate.testing import load_predictor
from deepres.inputspec import IMAGENET, InputSpec, InputSpecError

TRAIN = ["--model", "resnet18", "--iterations", "2", "--batch-size", "8", "--precision", "fp32",
         "--seed", "3"]


def _train(data, run, *extra):
    return main(["train", "--data", str(data), "--run-dir", str(run), *TRAIN, *extra])


def _weights(run):
    with safe_open(str(run / "weights.safetensors"), "pt") as f:
        return dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}


@pytest.fixture
def r18(tmp_path, monkeypatch):
    """The same bytes as torchvision:resnet18 (placed in its hub cache: no download here) and
    as a plain state-dict file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(1)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, cache / ResNet18_Weights.DEFAULT.url.rsplit("/", 1)[1])
    torch.save(state, tmp_path / "resnet18.pth")
    return tmp_path / "resnet18.pth"


def test_the_same_weights_by_either_route_give_the_same_spec_batches_and_weights(
        tiny_data, tmp_path, r18, capsys, monkeypatch):
    import deepres.data.pipeline as pipeline

    first = []
    original = pipeline.Pipeline.prep_train

    def record(self, x, g):
        out = original(self, x, g)
        if len(first) < len(seen):
            first.append(out.clone())
        return out

    monkeypatch.setattr(pipeline.Pipeline, "prep_train", record)
    results = []
    for n, source in enumerate(["torchvision:resnet18", str(r18)]):
        seen = [None] * (n + 1)
        assert _train(tiny_data, tmp_path / f"run{n}", "--init", source) == 0
        err = capsys.readouterr().err
        assert "input: as " in err and "std (0.229, 0.224, 0.225)" in err
        assert "--input-spec dataset uses the data's own mean" in err
        results.append(_weights(tmp_path / f"run{n}"))
    (meta_tv, w_tv), (meta_file, w_file) = results
    assert meta_tv == meta_file  # the same saved specification, classes and recipe
    assert json.loads(meta_tv["input_std"]) == pytest.approx([0.229, 0.224, 0.225])
    assert torch.equal(first[0], first[1])  # the same first normalised batch
    assert all(torch.equal(w_tv[k], w_file[k]) for k in w_tv)  # and so the same weights


def test_input_spec_dataset_overrides_the_weights(tiny_data, tmp_path, r18, capsys):
    assert _train(tiny_data, tmp_path / "run", "--init", str(r18),
                  "--input-spec", "dataset") == 0
    assert "input: the training data's own mean (--input-spec dataset)" in capsys.readouterr().err
    meta, _ = _weights(tmp_path / "run")
    assert "input_std" not in meta
    assert json.loads(meta["input_mean"]) != pytest.approx(IMAGENET.mean.tolist())


def test_a_deepres_file_carries_its_own_spec(tiny_data, tmp_path, r18, capsys):
    assert _train(tiny_data, tmp_path / "a", "--init", str(r18)) == 0
    assert _train(tiny_data, tmp_path / "b", "--init", str(tmp_path / "a" / "weights.safetensors"),
                  "--lr", "0.01") == 0
    assert "metadata" in capsys.readouterr().err.split("input: as ")[-1]
    a, _ = _weights(tmp_path / "a")
    b, _ = _weights(tmp_path / "b")
    assert {k: a[k] for k in ("input_mean", "input_std", "input_size")} == \
        {k: b[k] for k in ("input_mean", "input_std", "input_size")}


def test_fine_tuning_small_images_at_the_weights_resolution(tiny_data, tmp_path, r18, capsys,
                                                            monkeypatch):
    import deepres.data.pipeline as pipeline

    sizes = set()
    original = pipeline.Pipeline._sized

    def record(self, x):
        out = original(self, x)
        sizes.add(tuple(out.shape[-2:]))
        return out

    monkeypatch.setattr(pipeline.Pipeline, "_sized", record)
    assert _train(tiny_data, tmp_path / "run", "--init", str(r18)) == 0
    assert "--input-size 224 fine-tunes at that size" in capsys.readouterr().err
    sizes.clear()
    assert _train(tiny_data, tmp_path / "big", "--init", str(r18), "--input-size", "64") == 0
    assert sizes == {(64, 64)}  # training and its evaluation alike
    meta, _ = _weights(tmp_path / "big")
    assert json.loads(meta["input_size"]) == 64 and json.loads(meta["test_resize"]) == 64
    # Test time follows the saved spec: a 32x32 file is seen at 64x64, eval and predict agree.
    p = load_predictor(str(tmp_path / "big" / "weights.safetensors"))
    img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    assert p.spec.test_view(img).shape == (3, 64, 64)
    picture = next((tiny_data / "test" / "class0").iterdir())
    assert main(["eval", "--weights", str(tmp_path / "big" / "weights.safetensors"),
                 "--data", str(tiny_data)]) == 0
    assert main(["predict", "--weights", str(tmp_path / "big" / "weights.safetensors"),
                 str(picture)]) == 0


def test_the_spec_round_trips_and_refuses_bad_fields():
    spec = InputSpec(224, 256, torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.2, 0.2]),
                     "bicubic")
    assert InputSpec.from_metadata(spec.to_metadata(), "w") == spec
    pixel = InputSpec(32, 32, torch.rand(3, 32, 32))
    assert InputSpec.from_metadata(pixel.to_metadata(), "w") == pixel
    for key, bad in (("input_size", "0"), ("input_size", "true"), ("input_std", "[1, -1, 1]"),
                     ("input_mean", "[1, 2]"), ("interpolation", "\"lanczos9\""),
                     ("test_resize", "100")):
        meta = {**spec.to_metadata(), key: bad}
        with pytest.raises(InputSpecError, match=f"w: metadata field '{key}'"):
            InputSpec.from_metadata(meta, "w")
    # Normalisation: the per-pixel mean at its size, its channel means at any other.
    x = torch.from_numpy(np.full((1, 3, 32, 32), 128, np.uint8))
    assert torch.allclose(pixel.normalize(x), 128 / 255 - pixel.mean)
    big = torch.from_numpy(np.full((1, 3, 40, 40), 128, np.uint8))
    assert torch.allclose(pixel.normalize(big)[0, :, 0, 0], 128 / 255 - pixel.channel_mean)
