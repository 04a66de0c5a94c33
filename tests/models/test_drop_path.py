"""drop_path_rate: stochastic depth of the residual branches, linear in depth, off in eval."""

import pytest
import torch

from deepres.models import create_model
from deepres.models.blocks import DropPath


def test_drop_path_drops_whole_images_at_its_rate_and_keeps_the_mean():
    torch.manual_seed(0)
    d = DropPath(0.3).train()
    out = d(torch.ones(20_000, 4, 2, 2))
    dropped = (out[:, 0, 0, 0] == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.015  # binomial sd 0.0032: about 4.7 sd
    assert abs(out.mean().item() - 1.0) < 0.03
    assert bool(((out == 0) | (out == out[:, :1, :1, :1])).all())  # per image, not per pixel
    assert torch.equal(d.eval()(out), out)


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "preact_resnet18", "wrn_16_4"])
def test_the_rate_rises_linearly_and_evaluation_is_unchanged(name):
    torch.manual_seed(0)
    with_dp = create_model(name, drop_path_rate=0.2)
    torch.manual_seed(0)
    without = create_model(name)
    rates = [b.drop_path.p if "drop_path" in b._modules else 0.0
             for s in with_dp.stage_names for b in getattr(with_dp, s)]
    n = len(rates)
    assert rates == pytest.approx([0.2 * k / (n - 1) for k in range(n)])
    assert with_dp.state_dict().keys() == without.state_dict().keys()  # weights load either way
    size = 32 if name != "resnet50" else 64
    x = torch.rand(4, 3, size, size)
    with torch.no_grad():
        assert torch.equal(with_dp.eval()(x), without.eval()(x))
        with_dp.train(), without.train()
        torch.manual_seed(1)
        a = with_dp(x)
        torch.manual_seed(1)
        b = without(x)
    assert not torch.equal(a, b)  # training drops branches


def test_plain_nets_and_bad_rates_are_refused():
    with pytest.raises(ValueError, match="plain network"):
        create_model("plain20", drop_path_rate=0.1)
    with pytest.raises(ValueError, match="below 1"):
        create_model("resnet20", drop_path_rate=1.0)
