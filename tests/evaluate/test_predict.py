"""deepres predict: top-k per image, bad files reported while the rest go on."""

import json

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
