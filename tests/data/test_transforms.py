"""Augmentation: deterministic under a seed, equal to slow per-image references."""

import pytest
import torch

from deepres.data import ArrayDataset, ArrayLoader
from deepres.data import augment as T
from deepres.data.batches import derived_generator
from deepres.inputspec import IMAGENET


def _batch(n=6, h=8, w=8):
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(3))


def test_pad_crop_matches_plain_reference():
    x = _batch()
    out = T.pad_crop(x, torch.Generator().manual_seed(5), pad=4)
    g = torch.Generator().manual_seed(5)
    dy = torch.randint(0, 9, (6,), generator=g)
    dx = torch.randint(0, 9, (6,), generator=g)
    for i in range(6):
        ref = torch.zeros(3, 16, 16, dtype=torch.uint8)
        ref[:, 4:12, 4:12] = x[i]
        assert torch.equal(out[i], ref[:, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8])


def test_flip_and_same_seed_same_batch():
    x = _batch(64)
    a = T.cifar_train_augment(x, torch.Generator().manual_seed(1))
    b = T.cifar_train_augment(x, torch.Generator().manual_seed(1))
    c = T.cifar_train_augment(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    f = T.random_flip(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(f[i], x[i].flip(2)) for i in range(64)]
    assert 10 < sum(flipped) < 54
    assert all(fl or torch.equal(f[i], x[i]) for i, fl in enumerate(flipped))


def test_normalize_and_mean_image():
    x = _batch(10)
    nhwc = x.permute(0, 2, 3, 1)
    mean = T.mean_image(nhwc)
    assert mean.shape == (3, 8, 8)
    assert torch.allclose(mean, x.double().mean(0).float() / 255, atol=1e-6)
    z = T.normalize(x, mean)
    assert torch.allclose(z.mean(0), torch.zeros(3, 8, 8), atol=1e-6)


def test_pca_lighting_is_the_formula():
    x = torch.zeros(2, 3, 4, 4)
    out = T.pca_lighting(x, torch.Generator().manual_seed(0))
    alpha = torch.randn(2, 3, generator=torch.Generator().manual_seed(0)) * 0.1
    for i in range(2):
        shift = sum(alpha[i, j] * T.IMAGENET_EIGVAL[j] * T.IMAGENET_EIGVEC[:, j] for j in range(3))
        assert torch.allclose(out[i, :, 0, 0], shift, atol=1e-6)
        assert torch.allclose(out[i], shift[:, None, None].expand(3, 4, 4), atol=1e-6)


def test_scale_augment_and_test_transform_sizes():
    img = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    sides = set()
    for _ in range(5):
        out = T.scale_augment(img, g)
        assert out.shape == (3, 224, 224) and out.dtype == torch.uint8
    for _ in range(50):
        sides.add(int(torch.randint(256, 481, (1,), generator=g)))
    assert min(sides) >= 256 and max(sides) <= 480
    small = T.resize_shorter(img, 256)
    assert small.shape == (3, 256, 341)
    assert IMAGENET.test_view(img).shape == (3, 224, 224)


def test_imagenet_batch_pipeline_deterministic():
    x = _batch(4, 224, 224)
    mean = torch.full((3,), 0.5)
    a = T.imagenet_train_batch(x, torch.Generator().manual_seed(9), mean)
    b = T.imagenet_train_batch(x, torch.Generator().manual_seed(9), mean)
    assert a.dtype == torch.float32 and torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_same_batches_on_gpu():
    x = _batch(32)
    cpu = T.cifar_train_augment(x, torch.Generator().manual_seed(4))
    gpu = T.cifar_train_augment(x.cuda(), torch.Generator().manual_seed(4))
    assert torch.equal(cpu, gpu.cpu())


def _array_ds(n=50):
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (n, 8, 8, 3), dtype=torch.uint8, generator=g).numpy()
    return ArrayDataset(imgs, torch.arange(n).numpy() % 10, [str(i) for i in range(10)])


def test_array_loader_resume_mid_epoch_gives_same_batches():
    loader = ArrayLoader(_array_ds(), 8, seed=3, augment=T.cifar_train_augment)
    full = list(loader.batches(epoch=2))
    resumed = list(loader.batches(epoch=2, start=3))
    assert len(full) == 6 and len(resumed) == 3
    for (xa, ya), (xb, yb) in zip(full[3:], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    other_epoch = list(loader.batches(epoch=3))
    assert not torch.equal(full[0][1], other_epoch[0][1])


def test_array_loader_shards_are_disjoint_and_cover_the_batch():
    ds = _array_ds(48)
    whole = list(ArrayLoader(ds, 8, seed=1).batches(0))
    shards = [list(ArrayLoader(ds, 8, seed=1, rank=r, world_size=2).batches(0)) for r in (0, 1)]
    for b in range(6):
        ids = torch.cat([shards[0][b][1], shards[1][b][1]])
        assert sorted(ids.tolist()) == sorted(whole[b][1].tolist())
    with pytest.raises(ValueError, match="not divisible"):
        ArrayLoader(ds, 7, world_size=2)


def test_derived_generator_stable():
    a = torch.rand(3, generator=derived_generator(1, 2, 3))
    b = torch.rand(3, generator=derived_generator(1, 2, 3))
    c = torch.rand(3, generator=derived_generator(1, 3, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
