"""reports/verify.py recomputes the committed reports' claims from the committed run files."""

import importlib.util
from pathlib import Path

import pytest

REPORTS = Path(__file__).resolve().parents[2] / "reports"


def _verify():
    pytest.importorskip("scipy")
    spec = importlib.util.spec_from_file_location("verify", REPORTS / "verify.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_cifar_depth_report_verifies():
    verify = _verify()
    text = (REPORTS / "cifar-depth.md").read_text()
    assert verify.check_depth(text) == []


def test_verify_catches_a_changed_verdict_or_figure():
    verify = _verify()
    text = (REPORTS / "cifar-depth.md").read_text()
    line = next(x for x in text.splitlines() if x.startswith("- resnet-56 vs resnet-20:"))
    verdict = line.split("lower: ", 1)[1].split(" (", 1)[0]
    forged = text.replace(line, line.replace(f": {verdict} (", ": reproduced (")
                          if verdict != "reproduced" else line.replace(": reproduced (", ": x ("))
    assert verify.check_depth(forged)
    row = next(x for x in text.splitlines() if x.startswith("| resnet20 |"))
    assert verify.check_depth(text.replace(row, row.replace("|", "| 1.00 |", 2)))


@pytest.mark.slow
def test_committed_layer_responses_report_verifies():
    verify = _verify()
    config = next((REPORTS / "runs").glob("*/config.json"))
    import json
    if not Path(json.loads(config.read_text())["data"]["data"]).exists():
        pytest.skip("the CIFAR-10 archive the runs were trained on is not on this machine")
    assert verify.check_responses((REPORTS / "layer-responses.md").read_text()) == []
