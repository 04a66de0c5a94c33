"""Training conveniences: every config field as a flag, --config reruns a run, best weights by
validation error, an EMA of the weights."""

import json

from safetensors import safe_open

from deepres.cli import build_parser, main
from deepres.train.config import TrainConfig
from deepres.train_command import TRAIN_FLAGS

TINY = ["--model", "resnet8", "--batch-size", "8", "--precision", "fp32"]


def test_every_config_field_has_a_flag():
    import dataclasses
    cfg = TrainConfig()  # every key config.json saves (the model section flat: ModelArgs's)
    fields = {(section, name) for section in ("model", "data", "optim", "run")
              for name in cfg.to_dict()[section]}
    assert {f.name for f in dataclasses.fields(cfg.optim)} <= {n for s, n in fields}
    covered = set(TRAIN_FLAGS.values()) | {("run", "run_dir")}
    assert fields <= covered, sorted(fields - covered)
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for flag in ("--weight-decay", "--nesterov", "--label-smoothing", "--schedule",
                 "--milestones", "--warmup-lr", "--workers", "--crop", "--holdout", "--ema"):
        assert flag in help_text


def test_flags_reach_the_saved_config_and_config_reruns_it(tiny_data, tmp_path, capsys):
    run = tmp_path / "a"
    assert main(["train", "--data", str(tiny_data), "--run-dir", str(run), *TINY,
                 "--iterations", "3", "--weight-decay", "0.002", "--momentum", "0.5",
                 "--schedule", "step", "--milestones", "0.3,0.6", "--label-smoothing", "0.2",
                 "--no-nesterov"]) == 0
    saved = json.loads((run / "config.json").read_text())
    o = saved["optim"]
    assert (o["weight_decay"], o["momentum"], o["schedule"], o["milestones"],
            o["label_smoothing"], o["nesterov"]) == (0.002, 0.5, "step", [0.3, 0.6], 0.2, False)
    again = tmp_path / "b"
    assert main(["train", "--config", str(run / "config.json"), "--run-dir", str(again)]) == 0
    redo = json.loads((again / "config.json").read_text())
    redo["run"]["run_dir"] = saved["run"]["run_dir"]
    assert redo == saved
    a = json.loads((run / "summary.json").read_text())["test_error"]
    b = json.loads((again / "summary.json").read_text())["test_error"]
    assert a == b  # the same seed, config and data: the same run


def test_best_and_ema_weights_are_written_and_load(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data), "--run-dir", str(run), *TINY,
                 "--epochs", "4", "--holdout", "0.2", "--ema", "0.9"]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "val_error" in r]
    assert all("ema_val_error" in r and "ema_test_error" in r for r in evals)
    best = min(r["val_error"] for r in evals)
    with safe_open(str(run / "best.safetensors"), "pt") as f:
        assert float(f.metadata()["best_val_error"]) == best
    capsys.readouterr()
    for name in ("best.safetensors", "ema.safetensors"):
        assert main(["eval", "--weights", str(run / name), "--data", str(tiny_data),
                     "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["images"] == 24


def test_norm_weight_decay_spares_the_bn_layers_only(tiny_data, tmp_path):
    import torch

    from deepres.runtime import distributed as dist
    from deepres.train.config import recipe, with_overrides
    from deepres.train.loop import prepare

    def setup(norm_wd):
        cfg = with_overrides(recipe("cifar-paper", "resnet8"), data={"data": str(tiny_data)},
                             optim={"weight_decay": 0.1, "norm_weight_decay": norm_wd},
                             run={"run_dir": str(tmp_path / f"r{norm_wd}")})
        return prepare(cfg, dist.Context())

    assert len(setup(None).optimizer.param_groups) == 2  # head, body: old checkpoints resume
    s = setup(0.0)
    model = s.module
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    for g in s.optimizer.param_groups:
        g["lr"] = 0.1
    s.optimizer.step()  # zero gradients: only weight decay moves a parameter
    for n, p in model.named_parameters():
        moved = not torch.equal(p, before[n])
        assert moved == ("bn" not in n and "downsample.1" not in n), n
