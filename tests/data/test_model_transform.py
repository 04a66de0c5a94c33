"""data_config/create_transform: a model's input as a torchvision v2 transform, pixel for pixel
what `deepres eval` feeds the model."""

import numpy as np
import pytest
import torch
from PIL import Image

import deepres
from deepres.data.testtime import test_batches as eval_batches
from deepres.inputspec import InputSpec
from helpers import make_weights


@pytest.mark.parametrize("size", [32, 64])
def test_the_test_transform_is_what_eval_feeds_the_model(tmp_path, size):
    w = make_weights(tmp_path / "w.safetensors", size=size)
    model, _ = deepres.model_from_weights(w)
    rng = np.random.default_rng(0)
    files = []
    for i, (h, wd) in enumerate([(size, size), (50, 90), (301, 123), (17, 40)]):
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, (h, wd, 3), dtype=np.uint8)).save(files[-1])
    cfg = deepres.data_config(model)
    assert cfg["input_size"] == (3, size, size) and cfg["crop_pct"] <= 1
    t = deepres.create_transform(cfg)
    spec = model.input_spec
    batch = next(eval_batches(files, spec, batch_size=8))
    want = spec.normalize(batch.images)
    got = torch.stack([t(Image.open(f)) for f in files])
    assert torch.equal(got, want)  # the same pixels, bit for bit
    tensors = [torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)
               for f in files]
    assert torch.equal(torch.stack([t(x) for x in tensors]), want)
    assert torch.equal(torch.stack([t(x.float() / 255) for x in tensors]), want)


def test_a_dataloader_with_the_transform_gives_the_models_input(tmp_path):
    from torchvision.datasets import FakeData

    spec = InputSpec(64, 73, torch.tensor([0.485, 0.456, 0.406]),
                     torch.tensor([0.229, 0.224, 0.225]), "bicubic")
    data = FakeData(6, (3, 90, 120), transform=deepres.create_transform(
        deepres.data_config(spec)))
    x, _ = next(iter(torch.utils.data.DataLoader(data, batch_size=6)))
    assert x.shape == (6, 3, 64, 64) and x.dtype == torch.float32
    model = deepres.create_model("resnet18", num_classes=4).eval()
    assert model(x).shape == (6, 4)


@pytest.mark.parametrize("size, name", [(32, "resnet20"), (224, "resnet18")])
def test_the_training_transform_is_the_papers_augmentation(size, name):
    model = deepres.create_model(name)
    t = deepres.create_transform(deepres.data_config(model), training=True)
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), np.uint8))
    torch.manual_seed(0)
    outs = [t(img) for _ in range(4)]
    assert all(o.shape == (3, size, size) for o in outs)
    assert not all(torch.equal(outs[0], o) for o in outs[1:])  # random crops and flips


def test_a_bad_config_is_one_clear_error():
    with pytest.raises(ValueError, match="input_size"):
        deepres.create_transform({"mean": (0.5, 0.5, 0.5)})
    with pytest.raises(ValueError, match="no input specification"):
        deepres.data_config(object())


@pytest.mark.parametrize("h, w", [(50, 40), (20, 20), (33, 97), (32, 32)])
def test_a_mixed_size_image_held_in_memory_is_the_test_view(h, w):
    from deepres.data.splits import fit_to
    from deepres.inputspec import center_crop, resize_shorter

    img = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), np.uint8)
    want = center_crop(resize_shorter(torch.from_numpy(img).permute(2, 0, 1), 32), 32)
    assert torch.equal(torch.from_numpy(fit_to(img, (32, 32))).permute(2, 0, 1), want)
