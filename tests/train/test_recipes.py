"""The paper's recipes as the paper ran them (§3.4, §4.1, §4.2; PAPER.md)."""

import json
import warnings

import pytest
import torch
from safetensors import safe_open

from deepres import create_model, load_weights, save_weights
from deepres.cli import main
from deepres.reproduce import plan
from deepres.train.config import recipe


def _rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_imagenet_recipe_holds_out_validation_and_the_plateau_drops_the_lr(tiny_data, tmp_path):
    cfg = recipe("imagenet-paper", "resnet50")
    assert cfg.data.holdout == 10_000 and cfg.optim.schedule == "plateau"
    run = tmp_path / "run"
    rc = main(["train", "--recipe", "imagenet-paper", "--model", "resnet8", "--data",
               str(tiny_data), "--epochs", "14", "--batch-size", "8", "--lr", "0.05",
               "--run-dir", str(run), "--precision", "fp32"])
    assert rc == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"]["holdout"] == 10_000
    rows = _rows(run)
    assert rows[-1]["val_images"] == 9  # 10,000 capped at a tenth of the 96 training images
    assert any(r.get("lr_divided") for r in rows), "the plateau never divided the lr"
    lrs = [r["lr"] for r in rows if "lr" in r]
    levels = sorted(set(lrs), reverse=True)
    assert levels[:2] == pytest.approx([0.05, 0.005])  # divided by 10 at the plateau


def test_cifar_recipe_trains_on_all_training_images():
    assert recipe("cifar-paper", "resnet20").data.holdout == 0


def test_imagenet_experiments_train_what_each_table_trained(tmp_path):
    runs = {r.label: r.config for r in plan("imagenet", "full", 1, "d", "cpu", tmp_path)}
    for label in ("resnet18-A", "resnet34-A"):  # Table 2: option A
        assert runs[label].model.shortcut == "A"
    assert {runs[k].model.shortcut for k in ("resnet34-B", "resnet34-C")} == {"B", "C"}
    for d in (50, 101, 152):  # Table 4: option B, the paper's bottleneck
        cfg = runs[f"resnet{d}-B"]
        assert cfg.model.shortcut == "B" and cfg.model.stride_in_1x1
    assert all(c.run.precise_bn > 0 for c in runs.values())
    assert not any("resnet18-B" == k for k in runs)


def test_full_cifar_depth_plan_has_resnet1202_and_five_resnet110_seeds(tmp_path):
    runs = plan("cifar-depth", "full", 1, "d", "cpu", tmp_path)
    models = [r.config.model.name for r in runs]
    assert "resnet1202" in models and "plain1202" not in models
    assert models.count("resnet110") == 5 and models.count("resnet56") == 1


def test_stride_in_1x1_is_trained_and_recorded(tiny_data, tmp_path):
    run = tmp_path / "run"
    rc = main(["train", "--model", "resnet50", "--stride-in-1x1", "--data", str(tiny_data),
               "--iterations", "1", "--batch-size", "4", "--run-dir", str(run)])
    assert rc == 0
    assert json.loads((run / "config.json").read_text())["model"]["stride_in_1x1"] is True
    with safe_open(str(run / "weights.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["model_options"])["stride_in_1x1"] is True


def test_torchvision_weights_into_a_stride_in_1x1_model_warn(tmp_path):
    import torchvision

    path = tmp_path / "tv.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    with pytest.warns(UserWarning, match="stride in the 3x3"):
        load_weights(create_model("resnet50", stride_in_1x1=True), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_weights(create_model("resnet50"), path)  # same convention: no warning


def test_precise_bn_in_training_and_as_its_own_step(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", "--model", "resnet8", "--data", str(tiny_data), "--epochs", "2",
               "--batch-size", "8", "--precise-bn", "3", "--run-dir", str(run)])
    assert rc == 0
    summary = json.loads((run / "summary.json").read_text())
    pbn = summary["precise_bn"]
    assert pbn["batches"] == 3 and {"test_error_before", "test_error_after"} <= set(pbn)
    assert summary["test_error"] == pytest.approx(pbn["test_error_after"])
    capsys.readouterr()
    out = tmp_path / "pbn.safetensors"
    rc = main(["precise-bn", "--weights", str(run / "weights.safetensors"), "--data",
               str(tiny_data), "--batches", "4", "--batch-size", "8", str(out)])
    assert rc == 0
    assert "precise BN over 4 batches" in capsys.readouterr().out
    with safe_open(str(out), "pt") as f:
        assert f.metadata()["precise_bn_batches"] == "4"
        assert "class_names" in f.metadata()


def test_precise_bn_sets_the_plain_average():
    from deepres.train.precise_bn import recompute_bn_stats

    bn = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    xs = [torch.randn(4, 3, 5, 5) * (i + 1) + i for i in range(3)]
    recompute_bn_stats(bn, iter(xs), 3)
    means = torch.stack([x.mean((0, 2, 3)) for x in xs]).mean(0)
    assert torch.allclose(bn[0].running_mean, means, atol=1e-5)
    assert not bn.training


def test_saved_model_round_trip_keeps_stride(tmp_path):
    m = create_model("resnet50", stride_in_1x1=True)
    save_weights(m, tmp_path / "w.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_weights(create_model("resnet50", stride_in_1x1=True), tmp_path / "w.safetensors")
