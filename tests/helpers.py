"""Small data and weights made on the spot for tests."""

import numpy as np
import torch
from PIL import Image

from deepres import create_model, save_weights


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


def randomize_bn(model, seed=0):
    """Non-trivial BN statistics and affine parameters, so eval-mode checks mean something."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return model


def make_weights(path, name="resnet8", classes=("class0", "class1", "class2"), seed=0, size=32):
    """A deepres weights file with the metadata `deepres train` writes."""
    torch.manual_seed(seed)
    model = randomize_bn(create_model(name, num_classes=len(classes)), seed)
    mean = torch.rand(3, size, size) if size <= 64 else torch.rand(3)
    save_weights(model, path, class_names=list(classes),
                 extra={"input_mean": mean.tolist(), "input_size": size,
                        "test_resize": size if size <= 64 else 256})
    return path


def calibrate_bn(model, size, batches=3, seed=0):
    """Set BN running statistics from a few random batches, as a trained network has them,
    so eval-mode activations stay at a realistic scale; returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.rand(8, 3, size, size, generator=g))
    return model.eval()
