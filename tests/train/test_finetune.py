"""`deepres train --init`: fine-tuning from torchvision, timm, reference-script and deepres
weights, with a new classifier head, and the input specification (mean/std) carried through."""

import argparse
import json

import pytest
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import save_file

from deepres.cli import main

TRAIN = ["--model", "resnet18", "--iterations", "2", "--batch-size", "8", "--precision", "fp32"]


def _train(tiny_data, run, source, *extra):
    return main(["train", "--data", str(tiny_data), "--run-dir", str(run), "--init", str(source),
                 *TRAIN, *extra])


def _tv_state():
    torch.manual_seed(1)
    return torchvision.models.resnet18().state_dict()


@pytest.mark.parametrize("layout", ["plain-pth", "reference-script", "timm-train", "lightning",
                                    "ddp-no-num-batches", "safetensors"])
def test_init_from_foreign_checkpoints(tiny_data, tmp_path, capsys, layout):
    state = _tv_state()
    path = tmp_path / ("w.safetensors" if layout == "safetensors" else "w.pth")
    args = argparse.Namespace(model="resnet18", lr=0.5, epochs=90)
    if layout == "plain-pth":
        torch.save(state, path)
    elif layout == "reference-script":  # torchvision's references/classification/train.py
        torch.save({"model": state, "optimizer": {}, "lr_scheduler": {}, "epoch": 89,
                    "args": args}, path)
    elif layout == "timm-train":  # timm's train.py
        torch.save({"epoch": 3, "arch": "resnet18", "state_dict": state, "optimizer": {},
                    "version": 2, "args": args, "metric": 71.2}, path)
    elif layout == "lightning":
        torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()},
                    "epoch": 1}, path)
    elif layout == "ddp-no-num-batches":
        torch.save({f"module.{k}": v for k, v in state.items()
                    if not k.endswith("num_batches_tracked")}, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    run = tmp_path / "run"
    assert _train(tiny_data, run, path, "--lr", "1e-5") == 0
    err = capsys.readouterr().err
    assert "new classifier head: 1000 -> 3 classes" in err
    # The backbone came from the file: the stem barely moves in 2 steps at a tiny rate.
    with safe_open(str(run / "weights.safetensors"), "pt") as f:
        conv1 = f.get_tensor("conv1.weight")
    assert (conv1 - state["conv1.weight"]).abs().max() < 1e-3


class Sneaky:
    """A class that is not argparse.Namespace: still refused by the weights-only loader."""


def test_other_pickled_objects_are_still_refused(tiny_data, tmp_path, capsys):
    torch.save({"model": _tv_state(), "extra": Sneaky()}, tmp_path / "w.pth")
    assert _train(tiny_data, tmp_path / "run", tmp_path / "w.pth") == 2
    assert "refused to load" in capsys.readouterr().err


def test_init_from_torchvision_weights_in_the_hub_cache(tiny_data, tmp_path, monkeypatch,
                                                         capsys):
    _torchvision_finetune(tiny_data, tmp_path, monkeypatch, capsys)


def _torchvision_finetune(tiny_data, tmp_path, monkeypatch, capsys):
    """No download here: the file torchvision would fetch is placed where its cache expects
    it (TORCH_HOME/hub/checkpoints/<file name from the weights' URL>)."""
    from torchvision.models import ResNet18_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    state = _tv_state()
    torch.save(state, cache / ResNet18_Weights.DEFAULT.url.rsplit("/", 1)[1])
    run = tmp_path / "run"
    assert _train(tiny_data, run, "torchvision:resnet18", "--freeze-backbone") == 0
    assert "new classifier head: 1000 -> 3" in capsys.readouterr().err
    with safe_open(str(run / "weights.safetensors"), "pt") as f:
        meta = f.metadata()
        # Frozen backbone: bit-identical to the published weights.
        assert torch.equal(f.get_tensor("layer4.1.conv2.weight"), state["layer4.1.conv2.weight"])
    # torchvision's input specification travels with the fine-tuned weights.
    assert json.loads(meta["input_std"]) == pytest.approx([0.229, 0.224, 0.225])
    assert json.loads(meta["input_mean"]) == pytest.approx([0.485, 0.456, 0.406])
    return run


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_with_std_matches_eval(tiny_data, tmp_path, monkeypatch, capsys):
    from deepres.evaluate.testing import load_predictor, probs_single

    run = _torchvision_finetune(tiny_data, tmp_path, monkeypatch, capsys)
    w = run / "weights.safetensors"
    assert main(["export", "--weights", str(w), "--format", "torchscript",
                 str(tmp_path / "m.pt")]) == 0
    p = load_predictor(str(w))
    assert p.spec.std is not None
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    exported = torch.jit.load(str(tmp_path / "m.pt"))
    with torch.no_grad():
        ours = probs_single(p, x)
        theirs = torch.softmax(exported(x.float() / 255), 1)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_backbone_lr_factor_scales_the_backbone(tiny_data, tmp_path):
    from deepres.runtime import distributed as dist
    from deepres.train.config import recipe, with_overrides
    from deepres.train.loop import prepare

    cfg = with_overrides(recipe("finetune", "resnet8"), data={"data": str(tiny_data)},
                         run={"run_dir": str(tmp_path / "r")})
    s = prepare(cfg, dist.Context())
    assert [g["lr_scale"] for g in s.optimizer.param_groups] == [1.0, 0.1]
