"""Weight compatibility with torchvision: same names, same outputs on the same weights."""

import pytest
import torch
import torchvision

from deepres import create_model

NAMES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


def _params(names):
    heavy = {"resnet101", "resnet152"}
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
