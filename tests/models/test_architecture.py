"""Architecture facts from the paper: Table 1 multiply-adds, Table 6 parameters, shortcuts."""

import pytest
import torch
from torch import nn

from deepres import count_macs, count_params, create_model
from deepres.models import ZeroPadShortcut

# Table 1, multiply-adds at 224x224, with the paper's stride placement (stride in the 1x1).
TABLE1_MACS = {"resnet18": 1.8e9, "resnet34": 3.6e9, "resnet50": 3.8e9,
               "resnet101": 7.6e9, "resnet152": 11.3e9}
# Table 6, parameters of CIFAR ResNets with option A.
TABLE6_PARAMS = {"resnet20": 0.27e6, "resnet32": 0.46e6, "resnet44": 0.66e6,
                 "resnet56": 0.85e6, "resnet110": 1.7e6, "resnet1202": 19.4e6}


def _meta(name, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


@pytest.mark.parametrize("name,paper", TABLE1_MACS.items())
def test_table1_multiply_adds_within_3_percent(name, paper):
    kw = {"stride_in_1x1": True} if name in ("resnet50", "resnet101", "resnet152") else {}
    macs = count_macs(_meta(name, **kw), 224)
    assert abs(macs - paper) / paper < 0.03, (name, macs)


def test_stride_in_3x3_costs_more_as_paper_notes():
    # PAPER.md: torchvision's placement costs 4.09e9 for ResNet-50.
    v15 = count_macs(_meta("resnet50"), 224)
    assert abs(v15 - 4.09e9) / 4.09e9 < 0.01
    assert v15 > count_macs(_meta("resnet50", stride_in_1x1=True), 224)


@pytest.mark.parametrize("name,paper", TABLE6_PARAMS.items())
def test_table6_parameter_counts_within_3_percent(name, paper):
    params = count_params(_meta(name))
    assert abs(params - paper) / paper < 0.03, (name, params)


@pytest.mark.parametrize("name", ["resnet20", "resnet34", "resnet50"])
def test_option_a_adds_no_parameters_and_c_has_more_than_b(name):
    a, b, c = (count_params(_meta(name, shortcut=s)) for s in "ABC")
    plain = count_params(_meta(name.replace("resnet", "plain")))
    assert a == plain  # A's shortcuts are parameter-free: exactly the plain net's parameters
    assert a < b < c
    shortcuts = [m for m in _meta(name, shortcut="A").modules() if isinstance(m, ZeroPadShortcut)]
    assert shortcuts and all(not list(m.parameters()) for m in shortcuts)


@pytest.mark.parametrize("name", ["plain20", "plain34", "plain50", "plain1202"])
def test_plain_twins_have_no_shortcut_at_all(name):
    model = _meta(name)
    blocks = [m for m in model.modules() if hasattr(m, "residual")]
    assert blocks and all(not m.residual and m.downsample is None for m in blocks)
    assert not any(isinstance(m, ZeroPadShortcut) for m in model.modules())


def test_plain_forward_really_skips_the_addition():
    torch.manual_seed(0)
    res, plain = create_model("resnet8").eval(), create_model("plain8").eval()
    plain.load_state_dict(res.state_dict())  # same weights: only the shortcuts differ
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(res(x), plain(x))
    block = res.layer1[0]
    expected = torch.relu(block.residual_branch(x_ := torch.randn(1, 16, 8, 8)) + x_)
    assert torch.allclose(block(x_), expected)


def test_zero_pad_shortcut_subsamples_and_pads():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    y = ZeroPadShortcut(2, 4, 2)(x)
    assert y.shape == (1, 4, 2, 2)
    assert torch.equal(y[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 2:]) == 0


def test_option_c_projects_every_block():
    model = _meta("resnet20", shortcut="C")
    blocks = [m for m in model.modules() if hasattr(m, "residual")]
    assert all(isinstance(b.downsample, nn.Sequential) for b in blocks)
    model_b = _meta("resnet20", shortcut="B")
    projected = [b for b in model_b.modules() if isinstance(getattr(b, "downsample", None),
                                                             nn.Sequential)]
    assert len(projected) == 2  # only where 16->32 and 32->64 channels


def test_stride_in_1x1_moves_the_stride():
    block = create_model("resnet50", stride_in_1x1=True).layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    block = create_model("resnet50").layer2[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)


def test_zero_init_residual():
    model = create_model("resnet50", zero_init_residual=True)
    assert all(torch.count_nonzero(b.bn3.weight) == 0 for b in model.layer1)
    assert torch.count_nonzero(create_model("resnet50").layer1[0].bn3.weight) > 0
