"""deepres reproduce at smoke scale: runs, reports with the paper's numbers, resume, report-only."""

import pytest

from deepres.analysis.responses import layer_response_std, response_layers
from deepres.cli import main
from deepres.models import create_model
from deepres.reproduce import reproduce


def test_table1_report(tmp_path):
    path = reproduce("table1", out=tmp_path)
    text = path.read_text()
    assert "| resnet50 | 25.56M | 3.86 | 3.8 |" in text
    assert "| resnet152 |" in text and "11.3" in text


def test_cifar_depth_smoke_then_report_only_and_layer_responses(tmp_path, capsys):
    assert main(["reproduce", "cifar-depth", "--scale", "smoke", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "cifar-depth.md").read_text()
    for model in ("plain8", "plain14", "resnet8", "resnet14"):
        assert f"| {model} |" in text
    assert (tmp_path / "cifar-depth.png").stat().st_size > 10_000
    # The paper's finding stated beside ours; one seed cannot resolve it.
    assert "the deeper plain net's training error higher: not resolved: one seed" in text
    for what in ("| data |", "| schedule |", "| seeds | 1 (0) |", "| precision |",
                 "| hardware |", "| wall time |"):
        assert what in text
    # Report-only rebuilds without training; finished runs are not trained again.
    (tmp_path / "cifar-depth.md").unlink()
    assert main(["reproduce", "cifar-depth", "--out", str(tmp_path), "--report-only"]) == 0
    assert "| resnet14 |" in (tmp_path / "cifar-depth.md").read_text()
    # layer-responses reuses the same trained nets.
    capsys.readouterr()
    assert main(["reproduce", "layer-responses", "--out", str(tmp_path)]) == 0
    assert "done already" in capsys.readouterr().err
    text = (tmp_path / "layer-responses.md").read_text()
    assert "| resnet14 | 1 | 13 |" in text and (tmp_path / "layer-responses.png").exists()


def test_interrupted_runs_resume_and_finished_ones_are_kept(tmp_path, monkeypatch):
    import shutil

    from deepres.experiments import runner

    reproduce("shortcuts", out=tmp_path)
    # As if stopped during B (its checkpoint is there, no summary) and before C started.
    (tmp_path / "runs" / "resnet8-B-s0" / "summary.json").unlink()
    shutil.rmtree(tmp_path / "runs" / "resnet8-C-s0")
    calls = []
    real_fit = runner.fit
    monkeypatch.setattr(runner, "fit", lambda cfg, resume=False: calls.append(
        (cfg.model.shortcut, resume)) or real_fit(cfg, resume=resume))
    reproduce("shortcuts", out=tmp_path)
    assert calls == [("B", True), ("C", False)]  # A was done; B resumed; C started afresh
    text = (tmp_path / "shortcuts.md").read_text()
    assert "resnet8 (A)" in text and "resnet8 (C)" in text and "25.03" in text


def test_imagenet_smoke_on_generated_folder(tmp_path):
    path = reproduce("imagenet", out=tmp_path)
    text = path.read_text()
    # Table 2's pair with option A, option C, the paper's bottleneck, precise BN, plateau.
    assert "| plain18 | Table 2 |" in text and "| resnet18-A | Table 2 | A | no |" in text
    assert "27.88" in text and "| resnet18-C |" in text
    assert "| resnet50-B | Table 3 | B | yes |" in text
    assert "precise BN" in text and "2; " in text


def test_layer_response_hooks_cover_every_3x3_layer():
    for name, count in (("resnet20", 19), ("plain56", 55), ("resnet18", 16)):
        layers = response_layers(create_model(name))
        assert len(layers) == count, name  # ResNet-18's 7x7 stem is not a 3x3 layer
    import torch
    model = create_model("resnet8")
    stds = layer_response_std(model, [torch.randn(4, 3, 32, 32)])
    assert len(stds) == 7 and all(s > 0 for s in stds)


def test_bad_experiment_arguments(tmp_path):
    with pytest.raises(ValueError, match="--seeds"):
        reproduce("cifar-depth", seeds=0, out=tmp_path)
    assert main(["reproduce", "imagenet", "--scale", "quick", "--out", str(tmp_path)]) == 2


def test_findings_are_judged_against_the_seed_spread():
    from deepres.report.experiments import _claims

    def runs(*errors):
        return [{"train_error": e, "test_error": e} for e in errors]

    clear = _claims({"plain20": runs(0.10, 0.11), "plain56": runs(0.20, 0.21),
                     "resnet20": runs(0.10, 0.11), "resnet56": runs(0.07, 0.08)})
    assert "reproduced (the gap of 10.00 points exceeds the seed spread of 1.00)" in clear[0]
    assert "reproduced" in clear[1]
    close = _claims({"plain20": runs(0.10, 0.13), "plain56": runs(0.11, 0.12),
                     "resnet20": runs(0.10, 0.11), "resnet56": runs(0.13, 0.14)})
    assert "not resolved at this scale" in close[0]
    assert "contradicted at this scale (the opposite gap of 3.00 points" in close[1]


def test_one_seed_plain_nets_are_judged_against_the_spread_measured_on_the_resnets():
    from deepres.report.experiments import _claims

    def run(final, curve):
        steps = {100 * (i + 1): e for i, e in enumerate(curve)}
        return {"train_error": final, "test_error": final, "train_curve": steps}

    plain20 = run(0.10, [0.5, 0.4, 0.3, 0.2, 0.10])
    plain56 = run(0.30, [0.6, 0.5, 0.2, 0.35, 0.30])  # below plain-20 at one logged step
    resnets = {"resnet20": [run(0.10, [0.1]), run(0.12, [0.1])],
               "resnet56": [run(0.08, [0.1]), run(0.09, [0.1])]}
    lines = _claims({"plain20": [plain20], "plain56": [plain56], **resnets})
    assert ("reproduced (the gap of 20.00 points exceeds the seed spread of the training error "
            "measured on resnet20, resnet56 (one seed per plain net) of 2.00)") in lines[0]
    assert "training error was the higher at 4 of 5 logged steps after the first tenth" in lines[0]
    # Without any measured spread, one seed resolves nothing.
    alone = _claims({"plain20": [plain20], "plain56": [plain56]})
    assert "not resolved: one seed per net" in alone[0]


def test_medium_scale_is_the_paper_shape_residual_pair_first(tmp_path):
    from deepres.experiments.runner import prepare_experiment

    runs = prepare_experiment("cifar-depth", scale="medium", seeds=2, data="sample", out=tmp_path)
    assert [r.key for r in runs] == ["resnet20-s0", "resnet56-s0", "resnet20-s1", "resnet56-s1",
                                     "plain20-s0", "plain56-s0"]  # one seed of the plain nets
    o = runs[0].config.optim
    assert (o.lr, o.schedule, o.milestones, o.iterations, o.batch_size) == \
        (0.1, "step", (0.5, 0.75), 12_000, 128)
    assert runs[0].config.data.holdout == 0.0 and runs[0].config.run.compile
    assert main(["reproduce", "cifar-depth", "--scale", "medium", "--out", str(tmp_path),
                 "--data", "sample", "--report-only"]) == 0
    assert "Not finished" in (tmp_path / "cifar-depth.md").read_text()


def test_training_time_before_an_untimed_resume_is_estimated_from_the_logged_rates():
    from deepres.report.experiments import _train_seconds

    rows = [{"step": 100, "images_per_s": 100.0}, {"step": 150, "test_error": 0.5},
            {"step": 200, "images_per_s": 50.0}, {"step": 300, "images_per_s": 25.0}]
    assert _train_seconds({"seconds": 7.0}, rows, 10) == (7.0, False)
    # Resumed at step 250 from a checkpoint without the time: 100 steps at 100 img/s, 100 at
    # 50, and the 50 after the last log before the resume at that log's rate (batch 10).
    assert _train_seconds({"seconds": 7.0, "seconds_since_step": 250}, rows, 10) == \
        (7.0 + 10 + 20 + 10, True)


def test_layer_response_findings_are_judged_against_the_seed_spread():
    from deepres.report.responses import _judge, _smaller_layers

    assert _judge("resnet56", "plain56", [0.60, 0.70], [1.00]) == \
        "reproduced (the gap of 0.350 exceeds the seed spread of 0.100; plain56 one seed so far)"
    assert _judge("resnet56", "resnet20", [0.60, 0.70], [0.66, 0.64]).startswith(
        "not resolved at this scale (the gap of 0.000 is within the seed spread of 0.100")
    assert _judge("resnet56", "resnet20", [0.90, 0.91], [0.60, 0.62]).startswith(
        "contradicted (the opposite gap of 0.295")
    assert _judge("resnet56", "plain56", [0.6], [1.0]).startswith("not resolved: one seed")
    # Sorted by magnitude, rank by rank.
    assert _smaller_layers([0.1, 0.9, 0.5], [0.2, 0.8, 0.6]) == "2 of 3"
