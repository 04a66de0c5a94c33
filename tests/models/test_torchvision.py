"""Weight compatibility with torchvision: same names, same outputs on the same weights."""

import pytest
import torch
import torchvision

from deepres import create_model

NAMES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
         "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]


def _params(names):
    heavy = {"resnet101", "resnet152", "resnext101_32x8d", "resnext101_64x4d",
             "wide_resnet101_2"}
    return [pytest.param(n, marks=pytest.mark.slow) if n in heavy else n for n in names]


@pytest.mark.parametrize("name", _params(NAMES))
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_same_outputs_as_torchvision_on_same_weights(name, mode):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)()
    # Non-trivial BN statistics, so eval mode tests them too.
    for m in theirs.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    ours = create_model(name)
    ours.load_state_dict(theirs.state_dict())  # strict: identical names and shapes
    getattr(ours, mode)()
    getattr(theirs, mode)()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert torch.equal(a, b)
    if mode == "train":  # running statistics moved identically
        assert all(torch.equal(p, q) for p, q in zip(ours.state_dict().values(),
                                                      theirs.state_dict().values(), strict=True))


def test_state_dict_keys_match_exactly():
    for name in NAMES:
        with torch.device("meta"):
            ours = create_model(name).state_dict()
            theirs = getattr(torchvision.models, name)().state_dict()
        assert list(ours) == list(theirs)
        assert all(ours[k].shape == theirs[k].shape for k in ours)


# torchvision's documented parameter counts of its ResNeXt and wide ResNet weights.
TORCHVISION_PARAMS_M = {"resnext50_32x4d": 25.03, "resnext101_32x8d": 88.79,
                        "resnext101_64x4d": 83.46, "wide_resnet50_2": 68.88,
                        "wide_resnet101_2": 126.89}


@pytest.mark.parametrize("name,millions", TORCHVISION_PARAMS_M.items())
def test_resnext_and_wide_parameter_counts(name, millions):
    from deepres.analysis import count_params

    with torch.device("meta"):
        assert round(count_params(create_model(name)) / 1e6, 2) == millions
