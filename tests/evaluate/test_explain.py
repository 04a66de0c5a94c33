"""Evaluation that explains errors: per-class accuracy, precision and recall, the confusion
matrix (JSON and PNG) and the most confused pairs."""

import json

import torch
from PIL import Image

from deepres.cli import main
from deepres.evaluate.metrics import confusion_counts, explain


def test_explain_from_known_predictions():
    scores = torch.tensor([[9, 0, 0], [9, 0, 0], [0, 9, 0], [9, 0, 0], [0, 0, 9.0]])
    y = torch.tensor([0, 0, 1, 1, 1])
    conf = confusion_counts(scores, y, 3)
    assert conf.tolist() == [[2, 0, 0], [1, 1, 1], [0, 0, 0]]
    out = explain(conf, ["cat", "dog", "eel"])
    cat, dog, eel = out["per_class"]
    assert cat["accuracy"] == 1.0 and cat["precision"] == 2 / 3
    assert dog["recall"] == 1 / 3 and dog["precision"] == 1.0
    assert eel["images"] == 0 and eel["accuracy"] is None and eel["precision"] == 0.0
    assert out["most_confused"][0]["true"] == "dog"
    assert {(p["true"], p["predicted"]) for p in out["most_confused"]} == {("dog", "cat"),
                                                                          ("dog", "eel")}


def test_eval_prints_per_class_and_draws_the_matrix(weights_file, tiny, tmp_path, capsys):
    png = tmp_path / "confusion.png"
    assert main(["eval", "--weights", str(weights_file), "--data", str(tiny),
                 "--confusion", str(png)]) == 0
    out = capsys.readouterr().out
    assert "top-5" not in out  # 3 classes: every label is in the top 5
    for name in ("class0", "class1", "class2"):
        assert name in out
    assert "precision" in out and "recall" in out
    assert Image.open(png).size[0] > 300
    assert main(["eval", "--weights", str(weights_file), "--data", str(tiny), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sum(map(sum, result["confusion"])) == result["images"] == 24
    right = sum(result["confusion"][i][i] for i in range(3))
    assert abs(1 - right / 24 - result["top1_error"]) < 1e-12
    assert [c["class"] for c in result["per_class"]] == ["class0", "class1", "class2"]
