"""`deepres train --config FILE` accepts exactly what the flags accept: the same declarations
check types, ranges and choices; one line, exit 2, nothing created."""

import json

import pytest

from deepres.cli import main


@pytest.mark.parametrize("config, message", [
    ({"optim": {"lr": "fast"}}, "optim.lr must be a number, not \"fast\""),
    ({"optim": {"lr": None}}, "optim.lr must be a number, not null"),
    ({"optim": {"batch_size": "4"}}, "optim.batch_size must be an integer, not \"4\""),
    ({"optim": {"batch_size": True}}, "optim.batch_size must be an integer, not true"),
    ({"run": {"device": "tpu"}}, "run.device (--device) 'tpu' is not a device"),
    ({"optim": {"iterations": -5}}, "optim.iterations (--iterations) must be an integer >= 1"),
    ({"optim": {"lrr": 1}}, "optim: unknown field(s) 'lrr'; known: accumulate, backbone_lr"),
    ({"optimizer": {}}, "unknown key(s) 'optimizer'"),
    ({"optim": {"schedule": "exp"}}, "optim.schedule (--schedule) must be one of step"),
    ([1], "must be a JSON object of sections"),
])
def test_bad_config_files_are_refused_in_one_line(tmp_path, capsys, config, message):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    run = tmp_path / "run"
    assert main(["train", "--config", str(path), "--run-dir", str(run), "--data", "sample"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not run.exists()


def test_a_partial_config_takes_the_defaults(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"name": "resnet8"}, "optim": {"batch_size": 16}}))
    run = tmp_path / "run"
    assert main(["train", "--config", str(path), "--run-dir", str(run), "--data", "sample",
                 "--iterations", "1", "--precision", "fp32"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["name"] == "resnet8" and saved["optim"]["batch_size"] == 16
    assert saved["optim"]["momentum"] == 0.9


def test_a_config_nested_deep_is_one_line_on_train_and_resume(tmp_path, capsys):
    """Issue 42: a config.json nested 10^5 deep gave a RecursionError traceback on resume."""
    path = tmp_path / "c.json"
    path.write_text('{"optim": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert main(["train", "--config", str(path), "--run-dir", str(tmp_path / "r"), "--data",
                 "sample"]) == 2
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(path.read_text())
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("nested too deep") == 2 and "Traceback" not in err, err
