"""in_chans: grayscale and multispectral inputs; pretrained RGB weights adapted as timm does."""

import torch
import torchvision

import deepres
from deepres.models import create_model


def _rgb_file(tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()  # ImageNet-style weights, offline
    torch.save(state, tmp_path / "r18.pth")
    return state, str(tmp_path / "r18.pth")


def test_pretrained_rgb_weights_see_grey_as_the_rgb_net_does(tmp_path):
    state, path = _rgb_file(tmp_path)
    rgb = create_model("resnet18", pretrained=path).eval()
    grey = create_model("resnet18", in_chans=1, pretrained=path).eval()
    six = create_model("resnet18", in_chans=6, pretrained=path).eval()
    assert grey.conv1.weight.shape[1] == 1 and six.conv1.weight.shape[1] == 6
    torch.testing.assert_close(grey.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    g = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        want = rgb(g.expand(-1, 3, -1, -1))
        torch.testing.assert_close(grey(g), want, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(six(g.expand(-1, 6, -1, -1)), want, rtol=1e-4, atol=1e-4)
    four = create_model("resnet50", in_chans=4, resnet_d=True)  # the deep stem's first conv
    assert four.conv1[0].weight.shape[1] == 4 and four(torch.rand(1, 4, 64, 64)).shape == (1, 1000)


def test_a_grey_weights_file_rebuilds_with_its_channels(tmp_path):
    model = create_model("resnet20", in_chans=1, num_classes=3)
    deepres.save_weights(model, tmp_path / "g.safetensors")
    back, _ = deepres.model_from_weights(tmp_path / "g.safetensors")
    assert back.model_args.in_chans == 1 and back.conv1.weight.shape[1] == 1
    rgb = create_model("resnet20")
    assert "in_chans" not in rgb.model_options  # RGB files are as they always were


def test_a_grayscale_fine_tune_from_rgb_weights_trains(tmp_path):
    _, path = _rgb_file(tmp_path)
    torch.manual_seed(0)
    model = create_model("resnet18", in_chans=1, num_classes=2, pretrained=path)
    # two classes of grey images: a bright square top-left, or bottom-right
    x = torch.rand(64, 1, 32, 32) * 0.3
    y = torch.arange(64) % 2
    x[y == 0, :, 4:14, 4:14] += 0.7
    x[y == 1, :, 18:28, 18:28] += 0.7
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def error():
        model.eval()
        with torch.no_grad():
            return (model(x).argmax(1) != y).float().mean().item()

    before = error()
    model.train()
    for _ in range(20):  # 0 error from step 15 on when measured
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    after = error()
    assert after < before and after <= 0.1, (before, after)


def test_bad_in_chans_is_one_clear_error():
    import pytest

    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="in_chans"):
            create_model("resnet20", in_chans=bad)
