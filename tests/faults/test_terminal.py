"""Nothing untrusted reaches the terminal raw: class names from a weights file and file names
from a dataset are printed with control and bidirectional characters escaped."""

import json

from PIL import Image

from deepres.cli import main
from deepres.runtime.terminal import safe
from helpers import make_weights

HOSTILE = ["cat\x1b[2J", "dog\x1b]0;owned\x07", "ok\nfake.png: dog 99%", "\u202egnp.exe"]
RAW = ("\x1b", "\x07", "\u202e")


def test_safe_escapes_controls_and_bidi_visibly():
    assert safe("cat\x1b[2J") == "cat\\x1b[2J"
    assert safe("a\nb\tc\x7f") == "a\\x0ab\\x09c\\x7f"
    assert safe("\u202eabc\u2066") == "\\u202eabc\\u2066"
    assert safe("café 猫") == "café 猫"


def test_predict_prints_hostile_class_and_file_names_escaped(tmp_path, capsys):
    weights = make_weights(tmp_path / "w.safetensors", classes=HOSTILE)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    name = "x\x1b[31m\nforged.png: cat 100%.jpg"
    Image.new("RGB", (40, 40), (9, 99, 200)).save(imgs / name, format="JPEG")
    assert main(["predict", "--weights", str(weights), str(imgs), "--top-k", "4"]) == 0
    out = capsys.readouterr().out
    assert not any(ch in out for ch in RAW)
    assert out.count("\n") == 1  # one image, one line: no forged prediction line
    assert "\\x1b[2J" in out and "ok\\x0afake.png" in out and "\\u202egnp.exe" in out
    # --json stays exact JSON: the names round-trip unchanged.
    assert main(["predict", "--weights", str(weights), str(imgs), "--top-k", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result[0]["file"].endswith(name)
    assert {p["class"] for p in result[0]["predictions"]} == set(HOSTILE)


def test_data_check_prints_hostile_class_names_escaped(tmp_path, capsys):
    root = tmp_path / "data"
    for cls in ("plain", "evil\x1b]0;title\x07\nBAD"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(root / cls / f"{i}.png")
    (root / "plain" / "broken\x1b[2J.png").write_bytes(b"nope")
    main(["data", "check", str(root)])
    captured = capsys.readouterr()
    assert not any(ch in captured.out + captured.err for ch in RAW)
    assert "evil\\x1b]0;title\\x07\\x0aBAD" in captured.out
    assert "broken\\x1b[2J.png" in captured.out
