"""Every registered model: builds, runs forward and backward, right shape, finite."""

import pytest
import torch

from deepres import create_model, list_models
from deepres.models import resolve

HEAVY = {"resnet152", "plain152", "resnet1202", "plain1202", "resnet101", "plain101",
         "resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2", "wide_resnet50_2",
         "preact_resnet101", "preact_resnet152", "preact_resnet200", "preact_resnet1001",
         "wrn_28_10", "wrn_40_4"}


def _params(names, heavy):
    return [pytest.param(n, marks=pytest.mark.slow) if n in heavy else n for n in names]


@pytest.mark.parametrize("name", list_models())
def test_every_model_builds_with_defaults(name):
    spec = resolve(name)
    with torch.device("meta"):
        model = create_model(name)
    assert model.fc.out_features == spec.default_num_classes
    out = model(torch.zeros(2, 3, spec.default_input_size, spec.default_input_size, device="meta"))
    assert out.shape == (2, spec.default_num_classes)


@pytest.mark.parametrize("name", _params(list_models(), HEAVY))
def test_forward_backward_shape_finite(name):
    spec = resolve(name)
    model = create_model(name, num_classes=7)
    size = 32 if spec.family == "cifar" else 64  # global average pooling: any size works
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.conv1.weight.grad.abs().sum() > 0


def test_any_cifar_depth_and_name_clashes():
    assert resolve("resnet26").family == "cifar"
    assert len(create_model("resnet26").layer1) == 4
    # 50 and 152 are 6n+2, but resnet50/resnet152 mean the ImageNet networks (Table 1).
    assert resolve("resnet50").family == "imagenet"
    assert resolve("cifar_resnet50").family == "cifar"
    assert len(create_model("cifar_plain50").layer3) == 8


@pytest.mark.parametrize("bad", ["resnet21", "resnet7", "resnet2", "vgg16", "resnet"])
def test_unknown_names_give_a_clear_error(bad):
    with pytest.raises(ValueError, match="unknown model"):
        create_model(bad)


def test_bad_options_give_clear_errors():
    with pytest.raises(ValueError, match="shortcut"):
        create_model("resnet20", shortcut="D")
    with pytest.raises(ValueError, match="plain network"):
        create_model("plain20", shortcut="C")
    with pytest.raises(ValueError, match="stride_in_1x1"):
        create_model("resnet18", stride_in_1x1=True)
    with pytest.raises(ValueError, match="num_classes"):
        create_model("resnet20", num_classes=-1)  # 0 is valid: pooled features, as timm
