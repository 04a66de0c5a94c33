"""deepres reproduce at smoke scale: runs, reports with the paper's numbers, resume, report-only."""

from pathlib import Path

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
    assert "no test: a single seed in an arm gives no variance" in text
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
    # A damaged run file is named with its line; NaN in a summary is refused, not reported
    # as "gap nan"; the report on disk is left as it was.
    report = (tmp_path / "cifar-depth.md").read_text()
    metrics = tmp_path / "runs" / "resnet8-s0" / "metrics.jsonl"
    good = metrics.read_text()
    metrics.write_text(good + good.splitlines()[-1][:40] + "\n")
    capsys.readouterr()
    assert main(["reproduce", "cifar-depth", "--out", str(tmp_path), "--report-only"]) == 2
    err = capsys.readouterr().err
    assert f"{metrics}, line {len(good.splitlines()) + 1}: not valid JSON" in err
    assert "Traceback" not in err
    metrics.write_text(good)
    summary = tmp_path / "runs" / "resnet8-s0" / "summary.json"
    summary.write_text(summary.read_text().replace('"test_error": ', '"test_error": NaN, "x": '))
    assert main(["reproduce", "cifar-depth", "--out", str(tmp_path), "--report-only"]) == 2
    assert "test_error is nan" in capsys.readouterr().err
    assert (tmp_path / "cifar-depth.md").read_text() == report


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


def test_findings_are_judged_by_a_one_sided_welch_test():
    from deepres.report.experiments import _claims

    def runs(*errors):
        return [{"train_error": e, "test_error": e} for e in errors]

    clear = _claims({"plain20": runs(0.10, 0.11, 0.105), "plain56": runs(0.20, 0.21, 0.205),
                     "resnet20": runs(0.10, 0.11, 0.105), "resnet56": runs(0.07, 0.08, 0.075)})
    assert clear[0].endswith(".") and ": reproduced (gap 10.00 points in the paper's " in clear[0]
    assert "one-sided p = " in clear[0] and "3 and 3 seed(s)" in clear[0]
    assert ": reproduced (" in clear[1]
    # Two seeds per arm never reproduce, however large the gap: the rule's error rate needs 3.
    two = _claims({"resnet20": runs(0.10, 0.11), "resnet56": runs(0.07, 0.08)})
    assert ": consistent with the paper, not established (" in two[0]
    assert "needs p < 0.05 with at least 3 seeds per arm" in two[0]
    close = _claims({"plain20": runs(0.10, 0.13, 0.12), "plain56": runs(0.11, 0.12, 0.125),
                     "resnet20": runs(0.10, 0.11, 0.105), "resnet56": runs(0.13, 0.14, 0.135)})
    assert ": consistent with the paper, not established (" in close[0]  # p not below 0.05
    assert ": contradicted (gap 3.00 points against the paper's direction" in close[1]


def test_one_seed_plain_nets_are_not_tested_and_no_spread_is_borrowed():
    from deepres.report.experiments import _claims

    def run(final, curve):
        steps = {100 * (i + 1): e for i, e in enumerate(curve)}
        return {"train_error": final, "test_error": final, "train_curve": steps}

    plain20 = run(0.10, [0.5, 0.4, 0.3, 0.2, 0.10])
    plain56 = run(0.30, [0.6, 0.5, 0.2, 0.35, 0.30])  # below plain-20 at one logged step
    resnets = {"resnet20": [run(0.10, [0.1]), run(0.12, [0.1])],
               "resnet56": [run(0.08, [0.1]), run(0.09, [0.1])]}
    lines = _claims({"plain20": [plain20], "plain56": [plain56], **resnets})
    assert ": consistent with the paper, not established (gap 20.00 points" in lines[0]
    assert "no test: a single seed in an arm gives no variance" in lines[0]
    assert "training error was the higher at 4 of 5 logged steps after the first tenth" in lines[0]


def test_medium_scale_is_the_paper_shape_residual_pair_first(tmp_path):
    from deepres.reproduce import runs_of

    runs = runs_of("cifar-depth", scale="medium", seeds=2, data="sample", out=tmp_path)
    assert [r.key for r in runs] == ["resnet20-s0", "resnet56-s0", "resnet20-s1", "resnet56-s1",
                                     "plain20-s0", "plain56-s0", "plain20-s1", "plain56-s1"]
    # every seed of the plain nets too, after the residual ones (issue 28: three seeds per arm)
    o = runs[0].config.optim
    assert (o.lr, o.schedule, o.milestones, o.iterations, o.batch_size) == \
        (0.1, "step", (0.5, 0.75), 12_000, 128)
    assert runs[0].config.data.holdout == 0.0 and runs[0].config.run.compile
    assert main(["reproduce", "cifar-depth", "--scale", "medium", "--out", str(tmp_path),
                 "--data", "sample", "--report-only"]) == 0
    assert "Not finished" in (tmp_path / "cifar-depth.md").read_text()


def test_training_time_before_an_untimed_resume_is_estimated_from_the_logged_rates():
    from deepres.experiments.measure import _train_seconds

    rows = [{"step": 100, "images_per_s": 100.0}, {"step": 150, "test_error": 0.5},
            {"step": 200, "images_per_s": 50.0}, {"step": 300, "images_per_s": 25.0}]
    assert _train_seconds({"seconds": 7.0}, rows, 10) == (7.0, False)
    # Resumed at step 250 from a checkpoint without the time: 100 steps at 100 img/s, 100 at
    # 50, and the 50 after the last log before the resume at that log's rate (batch 10).
    assert _train_seconds({"seconds": 7.0, "seconds_since_step": 250}, rows, 10) == \
        (7.0 + 10 + 20 + 10, True)


def test_layer_response_findings_need_both_std_methods_to_agree():
    from deepres.report.responses import _judge, _smaller_layers

    def arm(pooled, per_channel):
        return {"pooled": pooled, "per-channel": per_channel}

    small, large = arm([0.60, 0.62, 0.61], [0.30, 0.31, 0.32]), arm([1.0, 1.1, 1.05],
                                                                    [0.50, 0.52, 0.51])
    assert _judge("resnet56", "plain56", small, large).startswith("reproduced by both methods")
    # Pooled says smaller, per-channel says larger: no claim beyond the weaker verdict.
    mixed = arm([1.0, 1.1, 1.05], [0.20, 0.21, 0.22])
    text = _judge("resnet56", "plain56", small, mixed)
    assert text.startswith("not resolved: the two std methods disagree")
    assert "pooled: reproduced" in text and "per-channel: contradicted" in text
    one = _judge("resnet56", "plain56", small, arm([1.0], [0.5]))
    assert one.startswith("consistent with the paper, not established by both methods")
    # Sorted by magnitude, rank by rank.
    assert _smaller_layers([0.1, 0.9, 0.5], [0.2, 0.8, 0.6]) == "2 of 3"


def test_preact_smoke_and_its_full_plan(tmp_path):
    from deepres.models import resolve
    from deepres.reproduce import plan

    path = reproduce("preact", out=tmp_path)
    text = path.read_text()
    assert "| cifar_resnet8 (B) | original | basic |" in text
    assert "| cifar_preact_resnet8 (B) | preact | basic |" in text
    assert "- depth 8: pre-activation" in text and "PMACs" in text
    # The full plan: the follow-up paper's four nets, 164 with bottleneck blocks, the
    # paper's schedule and its ResNet-110 warm-up.
    runs = plan("preact", "full", 1, "cifar10", "cuda", tmp_path)
    assert [r.config.model.name for r in runs] == [
        "cifar_resnet110", "cifar_preact_resnet110", "cifar_resnet164", "cifar_preact_resnet164"]
    assert all(r.config.optim.iterations == 64_000 and r.config.optim.warmup_lr == 0.01
               for r in runs)
    assert resolve("cifar_preact_resnet164").bottleneck and resolve("cifar_resnet164").bottleneck
    # As the follow-up paper: both arms with projection shortcuts where dimensions grow (so
    # they differ in the unit only; the original ResNet-164 has its 1.7M parameters), and
    # every run warms up at 0.01 for exactly its first 400 iterations.
    import deepres

    assert {r.config.model.shortcut for r in runs} == {"B"}
    assert all(r.config.optim.warmup_steps == 400 for r in runs)
    r164 = deepres.create_model("cifar_resnet164", shortcut="B")
    assert round(deepres.count_params(r164) / 1e6, 1) == 1.7


def test_the_runs_table_shows_each_runs_precision_and_says_when_they_are_mixed():
    from deepres.report.runs import mixed_note, precisions_of, runs_table

    def machine(p, cpu="AMD EPYC"):
        return {"cpu": cpu, "cores": 2, "torch": "2.14.1", "precision": p}

    moved = {"key": "resnet20-s0", "steps": 64_000, "seconds_estimated": False,
             "train_seconds": 600.0, "conv_init": "fan_in", "conv_init_recorded": True,
             "precision": "fp32", "machine": machine("fp32", "Zen 3"),
             "segments": [{"from_step": 0, "to_step": 30_000, "machine": machine("bf16")},
                          {"from_step": 30_000, "to_step": 64_000,
                           "machine": machine("fp32", "Zen 3")}]}
    plain = {**moved, "key": "resnet20-s1", "precision": "bf16", "segments": None,
             "machine": machine("bf16")}
    assert precisions_of(moved) == ["bf16", "fp32"] and precisions_of(plain) == ["bf16"]
    assert "mixed: bf16 in resnet20-s0, resnet20-s1; fp32 in resnet20-s0" in \
        mixed_note([moved, plain], ["bf16", "fp32"])
    assert mixed_note([plain], ["bf16"]) == ""
    row = next(line for line in runs_table([moved]) if line.startswith("| resnet20-s0"))
    assert "| bf16, fp32 |" in row and "steps 0-30000: AMD EPYC" in row and "Zen 3" in row
    # consecutive sittings on the same kind of machine are one span of steps
    split = {**moved, "segments": [{"from_step": 0, "to_step": 9_000, "machine": machine("bf16")},
                                   *moved["segments"]]}
    split["segments"][1] = {**split["segments"][1], "from_step": 9_000}
    row = next(line for line in runs_table([split]) if line.startswith("| resnet20-s0"))
    assert "steps 0-30000: AMD EPYC" in row and "steps 30000-64000: Zen 3" in row
    assert row.count("steps ") == 2


def test_a_run_with_a_validation_split_draws_the_validation_error_bold(tmp_path):
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepres.report.curves import draw_error_curves, plot_run_curves

    rows = [{"step": s, "train_error": 0.5, "val_error": 0.4 - s / 100, "test_error": 0.9}
            for s in (1, 2, 3)]
    fig, ax = plt.subplots()
    draw_error_curves(ax, {"r": rows}, bold="val")
    bold = [line for line in ax.get_lines() if line.get_linewidth() > 2]
    assert [round(y, 6) for y in bold[0].get_ydata()] == [39.0, 38.0, 37.0]
    plt.close(fig)
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    plot_run_curves(tmp_path, "r", "r (fast): thin train, bold test")
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_every_experiment_is_declared_whole():
    """One row per experiment (deepres/reproduce.py): a title, a planner that plans at every
    scale, and renderer and measurer functions that exist with the arguments they are given;
    the command line offers exactly these."""
    import inspect

    from deepres.cli import build_parser
    from deepres.experiments.specs import SCALES
    from deepres.reproduce import EXPERIMENTS

    for name, row in EXPERIMENTS.items():
        assert row.name == name and row.title and not row.title.endswith(".")
        assert len(inspect.signature(row.render.resolve()).parameters) == 3, name
        if row.measure is not None:
            assert len(inspect.signature(row.measure.resolve()).parameters) == 1, name
        for scale in SCALES:
            runs = row.plan(name, SCALES[scale], 1, "data", "cpu", Path("out"))
            assert isinstance(runs, list) and len({r.key for r in runs}) == len(runs), name
    actions = {a.dest: a for a in build_parser()._subparsers._group_actions[0].choices[
        "reproduce"]._actions}
    assert list(actions["experiment"].choices) == list(EXPERIMENTS)
