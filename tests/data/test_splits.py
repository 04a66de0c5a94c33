"""A dataset's own splits: val/ validates by default (and says so), `eval --split val` works,
and a folder holding only test/ (or only val/) evaluates instead of failing."""

import shutil

import pytest

from deepres.cli import main
from deepres.data import DatasetError, load_data


@pytest.fixture
def trained(tiny_data, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data), "--run-dir", str(run), "--model", "resnet8",
                 "--iterations", "4", "--batch-size", "16", "--precision", "fp32"]) == 0
    return run / "weights.safetensors"


def _with_val(tiny_data):
    shutil.copytree(tiny_data / "test", tiny_data / "val")
    return tiny_data


def test_val_folder_validates_by_default(tiny_data, tmp_path, capsys):
    data = _with_val(tiny_data)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--run-dir", str(run), "--model", "resnet8",
                 "--iterations", "6", "--batch-size", "16", "--precision", "fp32"]) == 0
    assert "validation: the dataset's val/ folder (24 images" in capsys.readouterr().err
    assert "val_error" in (run / "metrics.jsonl").read_text()
    # Asking to hold out part of train keeps val/ out of it.
    assert main(["train", "--data", str(data), "--run-dir", str(tmp_path / "held"),
                 "--model", "resnet8", "--iterations", "2", "--batch-size", "16",
                 "--precision", "fp32", "--holdout", "0.25"]) == 0
    assert "training images held out" in capsys.readouterr().err


def test_eval_split_val(tiny_data, trained, capsys):
    data = _with_val(tiny_data)
    capsys.readouterr()
    assert main(["eval", "--weights", str(trained), "--data", str(data), "--split", "val",
                 "--json"]) == 0
    assert '"split": "val"' in capsys.readouterr().out


@pytest.mark.parametrize("only", ["test", "val"])
def test_a_folder_with_only_one_split_evaluates(tiny_data, trained, tmp_path, capsys, only):
    folder = tmp_path / f"only-{only}"
    shutil.copytree(tiny_data / "test", folder / only)
    splits = load_data(str(folder))
    assert splits.train is None and len(splits.test) == 24
    capsys.readouterr()
    assert main(["eval", "--weights", str(trained), "--data", str(folder), "--json"]) == 0
    assert '"images": 24' in capsys.readouterr().out
    # Training on it says what is missing, in one line.
    assert main(["train", "--data", str(folder), "--run-dir", str(tmp_path / "r"),
                 "--model", "resnet8", "--iterations", "1"]) == 2
    err = capsys.readouterr().err
    assert "has no train split (no train/ folder)" in err and "Traceback" not in err
    with pytest.raises(DatasetError, match="no train split"):
        splits.split("train")
