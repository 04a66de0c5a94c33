"""load_weights: safetensors and .pth, prefixes, mismatches, corrupt files, malicious pickles."""

import os
import pickle

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from deepres import WeightsError, create_model, load_weights, model_from_weights, save_weights


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_torchvision_pth_loads_and_gives_identical_outputs(tmp_path):
    theirs = torchvision.models.resnet18().eval()
    path = tmp_path / "resnet18.pth"
    torch.save(theirs.state_dict(), path)
    ours = create_model("resnet18").eval()
    load_weights(ours, path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_safetensors_round_trip_with_metadata(tmp_path):
    model = create_model("resnet20", num_classes=3)
    path = tmp_path / "w.safetensors"
    save_weights(model, path, class_names=["a", "b", "c"])
    rebuilt, names = model_from_weights(path)
    assert names == ["a", "b", "c"]
    assert _same(model.state_dict(), rebuilt.state_dict())
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_wrapper_prefixes_are_stripped(tmp_path, prefix):
    src = create_model("resnet8")
    path = tmp_path / "ddp.pt"
    torch.save({"epoch": 3, "state_dict": {prefix + k: v for k, v in src.state_dict().items()}},
               path)
    dst = create_model("resnet8")
    load_weights(dst, path)
    assert _same(src.state_dict(), dst.state_dict())


def test_plain_safetensors_from_another_tool(tmp_path):
    src = torchvision.models.resnet34()
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    dst = create_model("resnet34")
    load_weights(dst, path)
    assert _same(src.state_dict(), dst.state_dict())


def test_mismatch_lists_keys_and_leaves_model_unchanged(tmp_path):
    path = tmp_path / "r50.pth"
    torch.save(create_model("resnet50").state_dict(), path)
    model = create_model("resnet18")
    before = _snapshot(model)
    with pytest.raises(WeightsError) as err:
        load_weights(model, path)
    msg = str(err.value)
    assert "r50.pth" in msg and "unexpected" in msg and "wrong shape" in msg
    assert "layer1.0.conv3.weight" in msg and "nothing was loaded" in msg
    assert _same(before, model.state_dict())
    torch.save(before, tmp_path / "r18.pth")
    with pytest.raises(WeightsError, match=r"(?s)missing from the file \(\d+\):\n.*conv3"):
        load_weights(create_model("resnet50"), tmp_path / "r18.pth")


def test_num_classes_mismatch_and_skip_classifier(tmp_path):
    src = create_model("resnet20", num_classes=10)
    path = tmp_path / "w.safetensors"
    save_weights(src, path)
    dst = create_model("resnet20", num_classes=100)
    before = _snapshot(dst)
    with pytest.raises(WeightsError, match=r"(?s)fc\.weight.*skip_classifier"):
        load_weights(dst, path)
    assert _same(before, dst.state_dict())
    load_weights(dst, path, skip_classifier=True)
    assert torch.equal(dst.layer3[0].conv1.weight, src.layer3[0].conv1.weight)
    assert torch.equal(dst.fc.weight, before["fc.weight"])  # classifier left as initialised


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_and_garbage_files_name_the_file(tmp_path, suffix):
    good = tmp_path / f"good{suffix}"
    model = create_model("resnet8")
    if suffix == ".pth":
        torch.save(model.state_dict(), good)
    else:
        save_weights(model, good)
    data = good.read_bytes()
    for name, content in [("trunc", data[: len(data) // 2]), ("garbage", b"hello world" * 50),
                          ("empty", b"")]:
        bad = tmp_path / f"{name}{suffix}"
        bad.write_bytes(content)
        with pytest.raises(WeightsError, match=name + suffix.replace(".", r"\.")):
            load_weights(create_model("resnet8"), bad)


def test_missing_file():
    with pytest.raises(WeightsError, match="no such weights file"):
        load_weights(create_model("resnet8"), "/nonexistent/w.pth")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# The crafted file is pickled at protocol 4 on purpose; torch says so as it refuses it.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_checkpoint_does_not_run_code(tmp_path, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"state_dict": create_model("resnet8").state_dict(), "x": _Exploit(marker)}
    if legacy:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    else:
        torch.save(payload, path)
    # Control: the payload is real; plain unpickling runs it.
    with open(path, "rb") as f:
        torch.load(f, weights_only=False) if not legacy else pickle.load(f)  # noqa: S301
    assert marker.exists()
    marker.unlink()
    with pytest.raises(WeightsError, match="evil.pth"):
        load_weights(create_model("resnet8"), path)
    assert not marker.exists()


@pytest.mark.parametrize("foreign", [False, True], ids=["deepres-file", "foreign-file"])
def test_loading_a_weights_file_builds_the_model_once(tmp_path, monkeypatch, foreign):
    import torch

    import deepres
    from deepres.models import loading, resnet

    src = deepres.create_model("resnet20", num_classes=7)
    path = tmp_path / ("w.pth" if foreign else "w.safetensors")
    if foreign:  # a DDP-wrapped state dict with another head size
        torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, path)
    else:
        deepres.save_weights(src, path)
    built = []
    real = resnet.ResNet.__init__
    monkeypatch.setattr(resnet.ResNet, "__init__",
                        lambda self, *a, **k: (built.append(1), real(self, *a, **k))[1])
    model, _ = (loading.rebuild_foreign(path, "resnet20") if foreign
                else loading.rebuild_from_weights(path))
    assert len(built) == 1
    assert model.fc.out_features == 7 and model.model_options["num_classes"] == 7
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 src.state_dict().values(), strict=True))


def test_the_same_weights_give_the_same_file_bytes_every_time(tmp_path):
    # safetensors writes its metadata from a hash map, in another order each process; the
    # file's sha256 (/v1/model, --deterministic runs) must not depend on it.
    import hashlib
    import subprocess
    import sys

    code = ("import torch, deepres; torch.manual_seed(0); "
            "m = deepres.create_model('resnet8', num_classes=3); "
            "deepres.save_weights(m, sys.argv[1], class_names=['a', 'b', 'c'], "
            "extra={'input_mean': [0.5, 0.5, 0.5], 'note': 'x'})")
    digests = set()
    for i in range(4):  # separate processes: a new hash seed each
        path = tmp_path / f"{i}.safetensors"
        subprocess.run([sys.executable, "-c", "import sys; " + code, str(path)], check=True)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
    model, names = model_from_weights(tmp_path / "0.safetensors")
    assert names == ["a", "b", "c"]


def test_a_deepres_file_brings_its_input_spec_and_classes_on_every_route(tmp_path):
    # model_from_weights, load_weights and create_model(pretrained=file) once left the
    # family's default input specification, and create_model a fresh default-size head.
    import torch

    from deepres.inputspec import InputSpec

    src = create_model("resnet8", num_classes=3)
    spec = InputSpec(40, 48, torch.full((3,), 0.25))
    save_weights(src, tmp_path / "w.safetensors", class_names=["a", "b", "c"],
                 extra=spec.to_metadata())
    built, names = model_from_weights(tmp_path / "w.safetensors")
    loaded = create_model("resnet8", num_classes=3)
    load_weights(loaded, tmp_path / "w.safetensors")
    pre = create_model("resnet8", pretrained=str(tmp_path / "w.safetensors"))
    for m in (built, loaded, pre):
        assert (m.input_spec.input_size, m.input_spec.test_resize) == (40, 48)
        assert torch.allclose(m.input_spec.mean, spec.mean)
        assert m.class_names == ["a", "b", "c"] and m.fc.out_features == 3
    # Asking for another head size still gives a new head, without the file's names.
    five = create_model("resnet8", num_classes=5, pretrained=str(tmp_path / "w.safetensors"))
    assert five.fc.out_features == 5 and not getattr(five, "class_names", None)
