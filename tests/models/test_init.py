"""He initialisation counted over fan_in (the paper's reference [13]) or fan_out (torchvision)."""

import math

import pytest
import torch

from deepres.models import create_model
from deepres.train.config import recipe


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_conv_init_std_follows_the_mode(mode):
    torch.manual_seed(0)
    model = create_model("resnet56", conv_init=mode)
    conv = model.layer2[1].conv1  # 32 -> 32 channels, 3x3: fan_in = fan_out = 288
    stem = model.conv1  # 3 -> 16 channels: fan_in 27, fan_out 144
    n = 27 if mode == "fan_in" else 144
    assert stem.weight.std().item() == pytest.approx(math.sqrt(2 / n), rel=0.25)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 288), rel=0.1)


def test_paper_recipes_use_fan_in_and_others_fan_out():
    assert recipe("cifar-paper", "resnet20").model.conv_init == "fan_in"
    assert recipe("imagenet-paper", "resnet50").model.conv_init == "fan_in"
    assert recipe("fast", "resnet20").model.conv_init == "fan_out"
    with pytest.raises(ValueError, match="conv_init"):
        create_model("resnet20", conv_init="xavier")


def test_imagenet_paper_recipe_subtracts_a_per_pixel_mean():
    assert recipe("imagenet-paper", "resnet18").data.pixel_mean
    assert recipe("cifar-paper", "resnet20").data.crop is None  # no ImageNet crop recorded
