import numpy as np
import pytest
from PIL import Image


def make_tiny_folder(root, classes=3, per_class=32, test_per_class=8, seed=0):
    """A small learnable image folder: each class has its own colour plus noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 215, (classes, 3))
    for split, n in (("train", per_class), ("test", test_per_class)):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = np.clip(base[c] + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:03d}.png")
    return root


@pytest.fixture
def tiny_data(tmp_path):
    return make_tiny_folder(tmp_path / "tiny")
