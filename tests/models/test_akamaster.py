"""akamaster's CIFAR ResNets (shared/peers/akamaster) load into ours and compute their function.

Their option A pads new channels on both sides of the identity, ours at the end: loading maps the
channels. Compared with their own resnet.py on the same inputs (within 1e-5).
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import deepres
from deepres.models.akamaster import is_akamaster, stage_orders, to_deepres

ROOT = Path(__file__).resolve().parents[2]
PEER = ROOT.parent / "shared" / "peers" / "akamaster"
PUBLISHED = sorted((PEER / "pretrained_models").glob("resnet*.th"))
needs_peer = pytest.mark.skipif(not (PEER / "resnet.py").is_file(),
                                reason="the peer's code (../shared/peers/akamaster) is not here")


def _their_resnet():
    spec = importlib.util.spec_from_file_location("akamaster_resnet", PEER / "resnet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _randomise_bn(net: torch.nn.Module) -> None:
    """Random BN statistics and affine terms, so a wrong channel order cannot hide."""
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


def test_stage_orders_are_permutations():
    for order, width in zip(stage_orders(), (16, 32, 64), strict=True):
        assert sorted(order.tolist()) == list(range(width))
    # Stage 2: our identity channels 0..15 are theirs 8..23; our zeros are theirs 0..7, 24..31.
    assert stage_orders()[1].tolist() == [*range(8, 24), *range(8), *range(24, 32)]


@needs_peer
@pytest.mark.parametrize("depth", [20, 32])
def test_their_layout_loads_and_computes_their_function(tmp_path, depth):
    theirs = torch.nn.DataParallel(getattr(_their_resnet(), f"resnet{depth}")())
    _randomise_bn(theirs)
    theirs.eval()
    path = tmp_path / f"resnet{depth}.th"
    torch.save({"state_dict": theirs.state_dict(), "best_prec1": 91.0}, path)
    assert is_akamaster(theirs.state_dict())
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        want = theirs.module(x)
        model, classes = deepres.model_from_weights(path)
        got = model.eval()(x)
    assert model.model_name == f"resnet{depth}" and classes[0] == "airplane"
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    # The same file given a model name, and loaded into a model built here.
    other = deepres.create_model(f"resnet{depth}")
    deepres.load_weights(other, path)
    with torch.no_grad():
        assert torch.allclose(other.eval()(x), want, atol=1e-5)


def test_a_plain_mapping_without_their_layout_is_left_alone():
    state = deepres.create_model("resnet20").state_dict()
    assert not is_akamaster(state)
    with pytest.raises(ValueError, match="unequal"):
        bad = {("module." + k).replace("fc.", "linear."): v for k, v in state.items()
               if not k.startswith("layer2.2")}
        to_deepres(bad)


@needs_peer
@pytest.mark.skipif(not PUBLISHED, reason="no published weights in shared/peers")
def test_published_weights_by_the_command_line_equal_their_model(tmp_path):
    """`deepres predict --weights resnet20-12fca82f.th` gives their network's probabilities."""
    from PIL import Image

    g = torch.Generator().manual_seed(2)
    pixels = torch.randint(0, 256, (32, 32, 3), generator=g, dtype=torch.uint8)
    image = tmp_path / "x.png"
    Image.fromarray(pixels.numpy()).save(image)
    path = PUBLISHED[0]
    out = subprocess.run([sys.executable, "-m", "deepres", "predict", "--weights", str(path),
                          str(image), "--json", "--top-k", "10", "--precision", "fp32"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    row = rows[0] if isinstance(rows, list) else rows
    got = {p["class"]: p["probability"] for p in row["predictions"]}
    theirs = torch.nn.DataParallel(_their_resnet().resnet20())
    theirs.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    x = ((pixels.permute(2, 0, 1).float() / 255 - mean) / std)[None]
    with torch.no_grad():
        want = theirs.module.eval()(x).softmax(1)[0]
    names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck")
    for i, name in enumerate(names):
        assert abs(got[name] - float(want[i])) < 1e-5, (name, got[name], float(want[i]))
