"""deepres predict: top-k per image, bad files reported while the rest go on."""

import json

import pytest
from PIL import Image

from deepres.cli import main


def test_predict_reports_bad_files_and_goes_on(weights_file, tmp_path, capsys):
    good = tmp_path / "imgs"
    good.mkdir()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(good / "a.jpg")
    Image.new("L", (20, 20)).save(good / "b.png")
    (good / "broken.jpg").write_bytes(b"no")
    (good / ".hidden.jpg").write_bytes(b"no")
    code = main(["predict", "--weights", str(weights_file), str(good), "--top-k", "2", "--json"])
    assert code == 1  # one failure
    out = json.loads(capsys.readouterr().out)
    assert [r["file"].rsplit("/", 1)[1] for r in out] == ["a.jpg", "b.png", "broken.jpg"]
    assert "error" in out[2] and "not an image" in out[2]["error"]
    for r in out[:2]:
        assert len(r["predictions"]) == 2
        assert r["predictions"][0]["class"] in ("class0", "class1", "class2")
        assert r["predictions"][0]["probability"] >= r["predictions"][1]["probability"]
    assert main(["predict", "--weights", str(weights_file), str(good / "a.jpg")]) == 0
    assert "a.jpg:" in capsys.readouterr().out


@pytest.mark.parametrize("flags", [frozenset({"avx2", "avx512_bf16"}), frozenset({"avx2"})],
                         ids=["native-bf16", "no-bf16"])
def test_command_line_and_python_api_answer_alike(weights_file, tmp_path, capsys, monkeypatch,
                                                  flags):
    """`deepres predict --json` and `Predictor.from_weights(...).predict` run at one default
    precision (runtime/options.py: RUNNING_PRECISION), with or without native bf16, so they
    give the same probabilities on the same image. On the torch engine, where the precision is
    deepres's own autocast (OpenVINO decides bf16 from the real CPU, not from its flags)."""
    import deepres.runtime.precision as precision
    from deepres import Predictor
    from deepres.runtime.options import RUNNING_PRECISION

    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    image = tmp_path / "a.png"
    Image.new("RGB", (40, 36), (120, 200, 30)).save(image)
    assert main(["predict", "--weights", str(weights_file), str(image), "--json",
                 "--top-k", "3", "--workers", "0", "--engine", "torch"]) == 0
    cli = {p["class"]: p["probability"] for p in json.loads(capsys.readouterr().out)[0]
           ["predictions"]}
    api = Predictor.from_weights(weights_file, engine="torch")
    assert RUNNING_PRECISION == "auto"
    assert api.precision == ("bf16" if "avx512_bf16" in flags else "fp32")
    got = {p["class"]: p["probability"] for p in api.predict(str(image), top_k=3)[0]
           ["predictions"]}
    assert got.keys() == cli.keys()
    for name, prob in cli.items():
        assert abs(got[name] - prob) <= 1e-6, (name, got[name], prob)
