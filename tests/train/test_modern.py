"""Training options beyond the paper (issue 18): torchvision's RandAugment/TrivialAugment,
random erasing, mixup/cutmix, AdamW, class weights, a balanced sampler, gradient accumulation,
fp16 (CUDA only) and deterministic algorithms; each recorded in config.json, resume exact."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from deepres.cli import main
from deepres.data import ArrayDataset, ArrayLoader
from deepres.data.augment import auto_augment, class_loss_weights, mixing, random_erasing

MODERN = ["--optimizer", "adamw", "--lr", "0.003", "--mixup", "0.2", "--cutmix", "1.0",
          "--auto-augment", "trivialaugment", "--random-erasing", "0.25", "--balanced-sampler",
          "--class-weights", "--accumulate", "2"]
BASE = ["--model", "resnet8", "--batch-size", "16", "--precision", "fp32", "--seed", "4",
        "--schedule", "step", "--milestones", "0.99", "--checkpoint-every", "1000"]


def test_modern_options_are_recorded_and_resume_exactly(tiny_data, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["train", "--data", str(tiny_data), *BASE, *MODERN]
    assert main([*common, "--run-dir", str(straight), "--iterations", "8",
                 "--milestones", "0.99"]) == 0
    assert main([*common, "--run-dir", str(split), "--iterations", "4"]) == 0
    assert main(["train", "--resume", str(split), "--iterations", "8"]) == 0
    cfg = json.loads((split / "config.json").read_text())
    assert cfg["optim"]["optimizer"] == "adamw" and cfg["optim"]["accumulate"] == 2
    assert cfg["optim"]["mixup"] == 0.2 and cfg["optim"]["cutmix"] == 1.0
    assert cfg["optim"]["class_weights"] is True and cfg["data"]["balanced_sampler"] is True
    assert cfg["data"]["auto_augment"] == "trivialaugment"
    assert cfg["data"]["random_erasing"] == 0.25
    a = load_file(str(straight / "weights.safetensors"))
    b = load_file(str(split / "weights.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_augmentations_are_seeded_per_image():
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    for name in ("randaugment", "trivialaugment"):
        policy = auto_augment(name)
        one = policy(x, torch.Generator().manual_seed(1))
        assert torch.equal(one, policy(x, torch.Generator().manual_seed(1)))
        assert not torch.equal(one, policy(x, torch.Generator().manual_seed(2)))
        assert one.dtype == torch.uint8 and one.shape == x.shape
    state = torch.get_rng_state()
    erased = random_erasing(1.0)(x.float(), torch.Generator().manual_seed(0))
    assert (erased == 0).any() and torch.equal(torch.get_rng_state(), state)  # global untouched


def test_mixing_gives_soft_targets_from_its_own_seed():
    mix = mixing(10, 0.2, 1.0)
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8)
    xa, ta = mix(x, y, torch.Generator().manual_seed(3))
    xb, tb = mix(x, y, torch.Generator().manual_seed(3))
    assert torch.equal(xa, xb) and torch.equal(ta, tb)
    assert ta.shape == (8, 10) and torch.allclose(ta.sum(1), torch.ones(8))
    assert mixing(10, 0.0, 0.0) is None


def test_balanced_sampler_and_class_weights_on_imbalanced_classes():
    labels = np.array([0] * 90 + [1] * 10)
    ds = ArrayDataset(np.zeros((100, 4, 4, 3), np.uint8), labels, ["a", "b"])
    order = ArrayLoader(ds, 10, balanced=True, seed=0).order(0)
    share = float((torch.from_numpy(labels)[order] == 1).float().mean())
    assert 0.35 < share < 0.65  # about half, against 10% without it
    assert torch.equal(order, ArrayLoader(ds, 10, balanced=True, seed=0).order(0))
    w = class_loss_weights(torch.from_numpy(labels), 2)
    assert torch.allclose(w, torch.tensor([100 / 180, 100 / 20]))


def test_adamw_has_no_decay_on_norms_and_biases():
    from deepres.models import create_model
    from deepres.train.config import OptimConfig
    from deepres.train.state import _optimizer

    opt = _optimizer(create_model("resnet8"), OptimConfig(optimizer="adamw", weight_decay=0.05))
    assert isinstance(opt, torch.optim.AdamW)
    for g in opt.param_groups:
        assert g["weight_decay"] == (0.05 if g["params"][0].dim() > 1 else 0.0)
        assert all((p.dim() > 1) == (g["weight_decay"] > 0) for p in g["params"])


def test_accumulation_matches_the_whole_batch_step():
    from deepres.train.guard import RunGuard
    from deepres.train.loop import _step

    x, y = torch.randn(8, 3, 4, 4), torch.randint(0, 5, (8,))
    weights = []
    for k in (1, 2, 4):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 5))
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        cfg = SimpleNamespace(optim=SimpleNamespace(accumulate=k, label_smoothing=0.0,
                                                   clip_grad_norm=None),
                              run=SimpleNamespace(precision="fp32"))
        s = SimpleNamespace(cfg=cfg, model=model, module=model, optimizer=opt, loss_weight=None,
                            scaler=None, guard=RunGuard("unused"), device=torch.device("cpu"))
        _step(s, x, y, 0)
        weights.append(model[1].weight.detach().clone())
    assert torch.allclose(weights[0], weights[1], atol=1e-6)
    assert torch.allclose(weights[0], weights[2], atol=1e-6)


def test_fp16_is_refused_on_a_cpu_in_one_line(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data), "--model", "resnet8", "--iterations", "1",
                 "--precision", "fp16", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert "fp16 needs a CUDA GPU" in err and "Traceback" not in err
    assert not run.exists()


def test_deterministic_switches_torch_to_deterministic_algorithms():
    code = ("import torch\nfrom deepres.train.state import make_deterministic\n"
            "make_deterministic()\nprint(torch.are_deterministic_algorithms_enabled(), "
            "torch.backends.cudnn.deterministic)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True"]


@pytest.mark.parametrize("flag", ["--auto-augment", "--optimizer"])
def test_choices_are_checked(tiny_data, tmp_path, capsys, flag):
    with pytest.raises(SystemExit):
        main(["train", "--data", str(tiny_data), flag, "bogus", "--run-dir", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err


def test_streamed_folders_take_the_same_options(tmp_path):
    """Large images (streamed through DataLoader workers) with the sampler and the policies."""
    from deepres.experiments.runner import make_generated_imagenet

    data = make_generated_imagenet(tmp_path / "gen")
    assert main(["train", "--data", str(data), "--model", "resnet18", "--iterations", "2",
                 "--batch-size", "4", "--crop", "64", "--precision", "fp32", "--balanced-sampler",
                 "--auto-augment", "randaugment", "--random-erasing", "0.5", "--workers", "0",
                 "--run-dir", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 2
