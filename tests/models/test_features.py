"""features_only=True (timm's meaning): the stem's activation and the stages' outputs, equal to
torchvision's on the same weights, usable as an FPN backbone."""

import pytest
import torch
from torchvision.models import resnet50
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.ops import FeaturePyramidNetwork

from deepres.models import create_model


def test_feature_maps_equal_torchvisions_on_the_same_weights():
    torch.manual_seed(0)
    tv = resnet50().eval()
    ours = create_model("resnet50", features_only=True)
    ours.load_state_dict({k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")})
    ours.eval()
    nodes = {"relu": "0", "layer1": "1", "layer2": "2", "layer3": "3", "layer4": "4"}
    ref = create_feature_extractor(tv, return_nodes=nodes)
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        want, got = ref(x), ours(x)
    assert len(got) == 5
    for i, g in enumerate(got):
        torch.testing.assert_close(g, want[str(i)], rtol=1e-5, atol=1e-5)
    assert ours.feature_info.channels() == [64, 256, 512, 1024, 2048]
    assert ours.feature_info.reduction() == [2, 4, 8, 16, 32]


def test_an_fpn_runs_on_the_selected_stages():
    backbone = create_model("resnet18", features_only=True, out_indices=(2, 3, 4)).eval()
    fpn = FeaturePyramidNetwork(backbone.feature_info.channels(), out_channels=32).eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        maps = backbone(x)
        out = fpn({str(i): m for i, m in enumerate(maps)})
    assert [tuple(v.shape) for v in out.values()] == [(1, 32, 16, 16), (1, 32, 8, 8),
                                                       (1, 32, 4, 4)]
    assert backbone.feature_info.reduction() == [8, 16, 32]
    loss = sum(v.mean() for v in fpn({str(i): m for i, m in enumerate(backbone(x))}).values())
    loss.backward()  # trainable end to end
    assert backbone.conv1.weight.grad is not None


def test_a_cifar_backbone_stops_at_the_last_stage_asked():
    m = create_model("resnet20", features_only=True, out_indices=(1,))
    assert m.stage_names == ["layer1"] and [t.shape[1] for t in m(torch.rand(1, 3, 32, 32))] == [16]


@pytest.mark.parametrize("indices", [(5,), (), ("1",)])
def test_bad_out_indices_are_one_clear_error(indices):
    with pytest.raises(ValueError, match="out_indices"):
        create_model("resnet18", features_only=True, out_indices=indices)


def test_out_indices_without_features_only_is_refused():
    with pytest.raises(ValueError, match="features_only"):
        create_model("resnet18", out_indices=(1,))
