"""Hugging Face datasets from local files (data/hfdata.py): save_to_disk folders and parquet."""

import json
import subprocess
import sys

import pytest

from deepres.cli import main
from deepres.data import DatasetError, load_data, resolve

datasets = pytest.importorskip("datasets")


def _hf(folder, out, parquet=False):
    """The image folder as a DatasetDict (images embedded as bytes), saved to ``out``."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

    indexes = resolve(str(folder)).indexes()
    classes = indexes["train"].classes
    features = Features({"picture": Image(), "fine": ClassLabel(names=classes)})
    dd = DatasetDict({
        name: Dataset.from_dict({"picture": [str(p) for p, _ in ix.samples],
                                 "fine": [y for _, y in ix.samples]}, features=features)
        for name, ix in (("train", indexes["train"]), ("test", indexes["test"]))})
    if parquet:
        out.mkdir()
        for name, split in dd.items():
            split.to_parquet(str(out / f"{name}-00000-of-00001.parquet"))
    else:
        dd.save_to_disk(str(out))
    return out


@pytest.mark.parametrize("parquet", [False, True])
def test_a_local_hf_dataset_holds_the_folders_images(tiny_data, tmp_path, parquet):
    hf = _hf(tiny_data, tmp_path / "hf", parquet)
    assert resolve(str(hf)).kind == resolve(f"hf:{hf}").kind == "hf"
    a, b = load_data(str(tiny_data)), load_data(f"hf:{hf}?image=picture&label=fine")
    assert a.classes == b.classes
    for split in ("train", "test"):  # same rows in the same order: the same arrays
        assert (a.split(split).images == b.split(split).images).all()
        assert (a.split(split).labels == b.split(split).labels).all()
    import pickle

    row = resolve(f"hf:{hf}").indexes()["test"].samples[5][0]
    copy = pickle.loads(pickle.dumps(row))  # as a DataLoader worker receives it
    assert copy.read() == row.read() == (tiny_data / "test/class0/005.png").read_bytes()


def test_hf_column_errors_are_one_line(tiny_data, tmp_path, capsys):
    hf = _hf(tiny_data, tmp_path / "hf")
    with pytest.raises(DatasetError, match="column fine holds ClassLabel"):
        load_data(f"hf:{hf}?image=fine")
    assert main(["data", "check", f"hf:{hf}?colour=x"]) == 2
    err = capsys.readouterr().err
    assert "unknown option(s) colour" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # the same arrays as the folder (above) is the default suite's proof
def test_training_and_eval_from_an_hf_dataset(tiny_data, tmp_path):
    hf = _hf(tiny_data, tmp_path / "hf")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "deepres", "train", "--model", "resnet8", "--data", str(hf),
           "--epochs", "3", "--batch-size", "16", "--seed", "1", "--precision", "fp32",
           "--run-dir", str(run)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    errors = {}
    for data in (str(tiny_data), str(hf)):  # the same weights, the same error on both
        out = subprocess.run([sys.executable, "-m", "deepres", "eval", "--weights",
                              str(run / "weights.safetensors"), "--data", data, "--json",
                              "--precision", "fp32"], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        result = json.loads(out.stdout)
        errors[data] = (result["top1_error"], result["images"])
    assert len(set(errors.values())) == 1 and next(iter(errors.values()))[1] == 24


def test_unlabelled_and_huge_hf_labels_are_clear_errors(tiny_data, tmp_path, capsys):
    """Issue 42: a ClassLabel of -1 (an unlabelled test split) crashed eval with a traceback
    and made training report "test error 100.00%"; an integer label of 10^12 built 10^12
    class names."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
    from datasets import Image as HFImage

    ix = resolve(str(tiny_data)).indexes()
    files = [str(p) for p, _ in ix["train"].samples]
    labels = [y for _, y in ix["train"].samples]
    features = Features({"image": HFImage(), "label": ClassLabel(names=ix["train"].classes)})
    DatasetDict({"train": Dataset.from_dict({"image": files, "label": labels}, features),
                 "test": Dataset.from_dict({"image": files[:6], "label": [-1] * 6}, features)}
                ).save_to_disk(str(tmp_path / "unlabelled"))
    d = load_data(f"hf:{tmp_path / 'unlabelled'}")
    assert d.test is None and len(d.train) == len(files)
    assert main(["eval", "--weights", str(tmp_path / "none.safetensors"), "--data",
                 f"hf:{tmp_path / 'unlabelled'}"]) != 0
    capsys.readouterr()
    wide = Features({"image": HFImage(), "label": Value("int64")})
    Dataset.from_dict({"image": files[:4], "label": [0, 1, 2, 10**12]}, wide).save_to_disk(
        str(tmp_path / "huge"))
    assert main(["data", "check", f"hf:{tmp_path / 'huge'}"]) == 2
    err = capsys.readouterr().err
    assert "row 3" in err and "not a class number" in err and "Traceback" not in err
