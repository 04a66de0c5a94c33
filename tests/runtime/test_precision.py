"""``--precision auto`` follows the hardware: bf16 only where it is native."""

import json

import pytest
import torch

from deepres.runtime import precision as P


def test_native_bf16_detected_from_cpu_flags():
    assert P.cpu_has_native_bf16(frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert P.cpu_has_native_bf16(frozenset({"avx2", "amx_bf16", "amx_tile"}))
    # An older Xeon: AVX-512 but no bf16 instructions, so bf16 would be emulated.
    assert not P.cpu_has_native_bf16(frozenset({"avx2", "avx512f", "avx512_vnni"}))


@pytest.mark.parametrize("flags, expected", [
    (frozenset({"avx512f", "avx512_bf16"}), "bf16"),
    (frozenset({"avx2", "amx_bf16"}), "bf16"),
    (frozenset({"avx2", "avx512f"}), "fp32"),
])
def test_auto_follows_the_cpu(monkeypatch, flags, expected):
    monkeypatch.setattr(P, "cpu_flags", lambda: flags)
    assert P.resolve_precision("auto", "cpu") == expected
    assert P.resolve_precision(None, "cpu") == expected
    assert P.resolve_precision("fp32", "cpu") == "fp32"
    assert P.resolve_precision("bf16", "cpu") == "bf16"



@pytest.mark.parametrize("capability, expected", [((9, 0), "bf16"), ((8, 0), "bf16"),
                                                  ((7, 5), "fp32"), ((7, 0), "fp32")])
def test_auto_on_cuda_follows_the_compute_capability(monkeypatch, capability, expected):
    # bf16 only where the GPU computes it natively (Ampere, 8.0, onwards); V100 and T4 emulate.
    monkeypatch.setattr(P.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(P.torch.cuda, "get_device_capability", lambda device=None: capability)
    assert P.resolve_precision("auto", "cuda") == expected
    assert P.why(expected, "cuda").startswith(expected)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="fp16"):
        P.resolve_precision("fp16", "cpu")


def test_autocast_runs_bf16_only_when_asked():
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with P.autocast("bf16", "cpu"):
        assert lin(x).dtype == torch.bfloat16
    with P.autocast("fp32", "cpu"):
        assert lin(x).dtype == torch.float32


def test_train_saves_the_precision_auto_chose(monkeypatch, tmp_path, tiny_data):
    from deepres.cli import main

    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    run = tmp_path / "run"
    rc = main(["train", "--data", str(tiny_data), "--iterations", "2", "--batch-size", "8",
               "--run-dir", str(run)])
    assert rc == 0
    assert json.loads((run / "config.json").read_text())["run"]["precision"] == "fp32"


def test_old_amp_configs_still_load():
    from deepres.train.config import TrainConfig

    d = TrainConfig().to_dict()
    del d["run"]["precision"]
    d["run"]["amp"] = True
    assert TrainConfig.from_dict(d).run.precision == "bf16"


def test_eval_measures_in_fp32_unless_asked(monkeypatch, tmp_path, tiny_data, capsys):
    """A measured error is the same on every machine: eval's default is fp32 even where bf16
    is native; --precision auto is the faster, machine-dependent choice."""
    from deepres.cli import main

    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data), "--iterations", "2", "--batch-size", "8",
                 "--run-dir", str(run), "--precision", "fp32"]) == 0
    said = {}
    for flags in ([], ["--precision", "auto"]):
        capsys.readouterr()
        assert main(["eval", "--weights", str(run / "weights.safetensors"), "--data",
                     str(tiny_data), "--engine", "torch", "--json", *flags]) == 0
        said[tuple(flags)] = json.loads(capsys.readouterr().out)["precision"]
    assert said == {(): "fp32", ("--precision", "auto"): "bf16"}
