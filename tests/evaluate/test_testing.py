"""10-crop, multi-scale and ensembles agree with slow references written plainly here."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepres.cli import main
from deepres.data import DatasetError, load_data
from deepres.evaluate.runner import run_eval
from deepres.evaluate.testing import (
    load_predictor,
    probs_multiscale,
    probs_single,
    probs_ten_crop,
    ten_crops,
)
from helpers import make_weights


def test_ten_crops_reference():
    x = torch.arange(2 * 3 * 6 * 7).reshape(2, 3, 6, 7)
    out = ten_crops(x, 4)
    assert out.shape == (2, 10, 3, 4, 4)
    ref = [x[..., 0:4, 0:4], x[..., 0:4, 3:7], x[..., 2:6, 0:4], x[..., 2:6, 3:7],
           x[..., 1:5, 1:5]]
    ref += [r.flip(-1) for r in ref]
    for i in range(10):
        assert torch.equal(out[:, i], ref[i])


def test_ten_crop_probs_reference(weights_file):
    p = load_predictor(str(weights_file))
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    got = probs_ten_crop(p, x)
    padded = F.pad(x, (4, 4, 4, 4))
    for n in range(2):
        acc = torch.zeros(3)
        for top, left in [(0, 0), (0, 8), (8, 0), (8, 8), (4, 4)]:
            for flip in (False, True):
                c = padded[n:n + 1, :, top:top + 32, left:left + 32]
                c = c.flip(-1) if flip else c
                inp = c.float() / 255 - p.spec.mean  # per-pixel mean at 32x32
                with torch.no_grad():
                    acc += F.softmax(p.model(inp), 1)[0]
        assert torch.allclose(got[n], acc / 10, atol=1e-5)


def test_multiscale_dense_reference(weights_file):
    p = load_predictor(str(weights_file))
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    got = probs_multiscale(p, x, [32, 48], flips=True)
    assert torch.allclose(got[0], _per_view_reference(p, x, [32, 48]), atol=1e-5)


def _per_view_reference(p, x, scales):
    m, views = p.model, []
    for s in scales:
        xs = (F.interpolate(x.float(), size=(s, s), mode="bilinear", align_corners=False,
                            antialias=True).round().clamp(0, 255) if s != 32 else x.float())
        mean = p.spec.mean if s == 32 else p.spec.mean.mean(dim=(1, 2))[:, None, None]
        for v in (xs, xs.flip(-1)):
            with torch.no_grad():
                f = m.layer3(m.layer2(m.layer1(m.relu(m.bn1(m.conv1(v / 255 - mean))))))
            # VGG's dense testing: class scores averaged over positions, then the softmax.
            pos = [m.fc(f[0, :, i, j]) for i in range(f.shape[2]) for j in range(f.shape[3])]
            views.append(F.softmax(torch.stack(pos).mean(0), 0))
    return torch.stack(views).mean(0)


def test_eval_json_and_ensemble(tiny, tmp_path, capsys):
    w1 = make_weights(tmp_path / "a.safetensors", seed=1)
    w2 = make_weights(tmp_path / "b.safetensors", seed=2)
    assert main(["eval", "--weights", str(w1), "--data", str(tiny), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"top1_error", "top5_error", "images"} <= set(out) and out["images"] == 24
    assert out["top5_error"] == 0.0  # three classes: the label is always in the top 5
    # The ensemble averages softmax scores: check against the two models' own probabilities.
    ds = load_data(str(tiny)).test
    x = torch.from_numpy(ds.images).permute(0, 3, 1, 2)
    pa, pb = (probs_single(load_predictor(str(w)), x) for w in (w1, w2))
    expected = ((pa + pb) / 2).argmax(1).ne(torch.from_numpy(ds.labels)).float().mean().item()
    ens = run_eval([str(w1), str(w2)], str(tiny))
    assert ens["models"] == 2 and abs(ens["top1_error"] - expected) < 1e-6


def test_class_mismatch_shows_both_lists(tiny, tmp_path):
    w = make_weights(tmp_path / "w.safetensors", classes=("cat", "dog", "cow"))
    with pytest.raises(DatasetError, match=r"(?s)weights \(3\): cat, dog, cow.*dataset \(3\): "
                                           r"class0, class1, class2"):
        run_eval([str(w)], str(tiny))


def test_folder_of_large_images_ten_crop_and_multiscale(tmp_path):
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "big" / "test" / c).mkdir(parents=True)
        (tmp_path / "big" / "train" / c).mkdir(parents=True)
        for i in range(2):
            img = np.random.default_rng(i).integers(0, 255, (260, 300, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "big" / "test" / c / f"{i}.png")
            Image.fromarray(img).save(tmp_path / "big" / "train" / c / f"{i}.png")
    w = make_weights(tmp_path / "w.safetensors", name="resnet18", classes=("a", "b"), size=224)
    one = run_eval([str(w)], str(tmp_path / "big"))
    ten = run_eval([str(w)], str(tmp_path / "big"), crops=10)
    ms = run_eval([str(w)], str(tmp_path / "big"), scales=[224, 256])
    assert one["images"] == ten["images"] == ms["images"] == 4


def test_eval_decodes_only_the_split_it_evaluates(tiny, weights_file, monkeypatch):
    """A plain folder: eval of test/ decodes test/ only (the training split was decoded first,
    5,000 images on the sample); --split train decodes train/ only."""
    from deepres.data import splits as sources

    decoded = []
    real = sources.load_cached_arrays

    def spy(index, *a, **k):
        decoded.append(str(index.root))
        return real(index, *a, **k)

    monkeypatch.setattr(sources, "load_cached_arrays", spy)
    r = run_eval([str(weights_file)], str(tiny), precision="fp32")
    assert r["images"] == 24
    assert decoded == [str(tiny / "test")]
    decoded.clear()
    assert run_eval([str(weights_file)], str(tiny), split="train", precision="fp32")[
        "images"] == 96
    assert decoded == [str(tiny / "train")]
    with pytest.raises(DatasetError, match="has no val split"):
        load_data(str(tiny), splits=("val",))
