"""CIFAR archives: python and binary formats, checksums, safe extraction, safe unpickling."""

import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from deepres.data import DatasetError, read_cifar
from deepres.data import cifar as C


def _python_cifar10(folder, n=6, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        batches[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in C.CIFAR10_CLASSES]}, f)
    return batches


def test_python_format(tmp_path):
    batches = _python_cifar10(tmp_path / "cifar-10-batches-py")
    ds = read_cifar(tmp_path / "cifar-10-batches-py", "train")
    assert ds.images.shape == (30, 32, 32, 3) and ds.classes == C.CIFAR10_CLASSES
    data, labels = batches["data_batch_1"]
    # Row layout: 1024 red, 1024 green, 1024 blue, each row-major.
    assert ds.images[0, 0, 1, 0] == data[0, 1] and ds.images[0, 0, 0, 2] == data[0, 2048]
    assert ds.labels[:6].tolist() == labels
    assert len(read_cifar(tmp_path / "cifar-10-batches-py", "test")) == 6


def test_binary_formats(tmp_path):
    rng = np.random.default_rng(1)
    f10 = tmp_path / "cifar-10-batches-bin"
    f10.mkdir()
    pix = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    rec = np.concatenate([np.array([[3], [1], [9], [0]], np.uint8), pix], 1)
    for i in range(1, 6):
        rec.tofile(f10 / f"data_batch_{i}.bin")
    rec.tofile(f10 / "test_batch.bin")
    (f10 / "batches.meta.txt").write_text("\n".join(C.CIFAR10_CLASSES) + "\n\n")
    ds = read_cifar(f10, "test")
    assert ds.labels.tolist() == [3, 1, 9, 0]
    assert np.array_equal(ds.images[2].transpose(2, 0, 1).reshape(-1), pix[2])

    f100 = tmp_path / "cifar-100-binary"
    f100.mkdir()
    rec = np.concatenate([np.array([[1, 42], [2, 7]], np.uint8), pix[:2]], 1)
    rec.tofile(f100 / "train.bin")
    (f100 / "fine_label_names.txt").write_text("\n".join(f"c{i}" for i in range(100)))
    ds = read_cifar(f100, "train")
    assert ds.labels.tolist() == [42, 7] and len(ds.classes) == 100
    (f100 / "train.bin").write_bytes(rec.tobytes()[:-5])
    with pytest.raises(DatasetError, match="truncated"):
        read_cifar(f100, "train")


def test_cifar100_python(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.zeros((3, 3072), np.uint8)
    for split in ("train", "test"):
        with open(folder / split, "wb") as f:
            pickle.dump({b"data": data, b"fine_labels": [5, 99, 0], b"coarse_labels": [1, 2, 3]},
                        f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, f)
    assert read_cifar(folder, "test").labels.tolist() == [5, 99, 0]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/deepres-cifar-pwned",))


def test_batches_cannot_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _python_cifar10(folder)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": []}, f)
    with pytest.raises(DatasetError, match="refusing to load posix.system|refusing to load os"):
        read_cifar(folder, "test")
    assert not os.path.exists("/tmp/deepres-cifar-pwned")


def _tar_with(tmp_path, member: tarfile.TarInfo, data=b"x"):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_extraction_refuses_escapes_and_links(tmp_path, kind):
    info = tarfile.TarInfo({"dotdot": "../escape.txt", "absolute": "/tmp/abs-escape.txt"}.get(
        kind, "link"))
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    if kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
    archive = _tar_with(tmp_path, info)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DatasetError, match="refusing"):
        C.safe_extract(archive, dest)
    assert not (tmp_path / "escape.txt").exists() and not list(dest.iterdir())


def _archive_of(tmp_path, name):
    src = tmp_path / "src"
    _python_cifar10(src / "cifar-10-batches-py")
    path = tmp_path / "served" / name
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return path


def test_download_verifies_checksum_before_extracting(tmp_path, monkeypatch):
    served = _archive_of(tmp_path, "cifar-10-python.tar.gz")
    good_md5 = hashlib.md5(served.read_bytes()).hexdigest()
    calls = []

    def fake_urlopen(url, timeout):
        calls.append(url)
        return open(served, "rb")

    monkeypatch.setattr(C.urllib.request, "urlopen", fake_urlopen)
    root = tmp_path / "root"
    # The published checksum does not match our locally made archive: refused, not extracted.
    with pytest.raises(DatasetError, match="does not match the published"):
        C.prepare_cifar("cifar10", root)
    assert calls == [C.ARCHIVES[("cifar10", "python")].url]
    assert not (root / "cifar-10-batches-py").exists()
    # With the checksum matching, it is extracted and read.
    monkeypatch.setitem(C.ARCHIVES, ("cifar10", "python"),
                        C.Archive(C.ARCHIVES[("cifar10", "python")].url, good_md5,
                                  "cifar-10-batches-py"))
    folder = C.prepare_cifar("cifar10", root)
    assert len(read_cifar(folder, "train")) == 30
    assert len(calls) == 1  # the verified file was kept; no second download


def test_not_a_cifar_folder(tmp_path):
    with pytest.raises(DatasetError, match="not an extracted CIFAR folder"):
        read_cifar(tmp_path)
