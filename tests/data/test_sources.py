"""The bundled sample, the decode cache and --data resolution."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from deepres.data import DatasetError, FolderDataset, load_data, sample_root, scan_folder
from deepres.data import splits as S
from deepres.data.testtime import test_batches as read_test_batches
from deepres.inputspec import IMAGENET


def test_bundled_sample_is_real_cifar10_subset():
    root = sample_root()
    splits = load_data("sample")
    assert splits.classes[:3] == ["airplane", "automobile", "bird"] and len(splits.classes) == 10
    assert splits.train.images.shape == (5000, 32, 32, 3)
    assert splits.test.images.shape == (1000, 32, 32, 3)
    assert np.bincount(splits.train.labels).tolist() == [500] * 10
    assert not splits.bad
    assert (root / "train" / "cat").is_dir()
    archive = os.path.join(os.path.dirname(S.__file__), "sample", S.SAMPLE_ARCHIVE)
    assert os.path.getsize(archive) <= 6_000_000
    # Real photographs, not noise: neighbouring pixels are strongly correlated.
    x = splits.train.images[:200].astype(np.float64)
    assert np.corrcoef(x[:, :, :-1].ravel(), x[:, :, 1:].ravel())[0, 1] > 0.8


def _folder(root, n=4, size=(8, 8)):
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            buf = io.BytesIO()
            Image.new("RGB", size, (i * 40, 0, 0)).save(buf, "PNG")
            (root / c / f"{i}.png").write_bytes(buf.getvalue())


def test_cache_is_reused_and_invalidated_by_changes(tmp_path, monkeypatch):
    _folder(tmp_path / "ds")
    calls = []
    real = S.decode_to_arrays
    monkeypatch.setattr(S, "decode_to_arrays",
                        lambda idx, shape=None: calls.append(1) or real(idx, shape))
    a = load_data(str(tmp_path / "ds"))
    b = load_data(str(tmp_path / "ds"))
    assert len(calls) == 1 and np.array_equal(a.train.images, b.train.images)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 255, 0)).save(buf, "PNG")
    (tmp_path / "ds" / "a" / "0.png").write_bytes(buf.getvalue())
    os.utime(tmp_path / "ds" / "a" / "0.png", ns=(1, 1))
    c = load_data(str(tmp_path / "ds"))
    assert len(calls) == 2 and c.train.images[0, 0, 0].tolist() == [0, 255, 0]


def test_bad_files_are_reported_not_replaced(tmp_path):
    _folder(tmp_path / "ds")
    (tmp_path / "ds" / "b" / "broken.png").write_bytes(b"garbage")
    splits = load_data(str(tmp_path / "ds"))
    assert [os.path.basename(b.path) for b in splits.bad] == ["broken.png"]
    assert len(splits.train) == 8  # the bad file is absent, not swapped for another image


def test_large_images_stream(tmp_path):
    _folder(tmp_path / "big", n=2, size=(300, 260))
    splits = load_data(str(tmp_path / "big"))
    assert not splits.in_memory
    ds = FolderDataset(splits.train, seed=0)
    x, y = ds[1]
    assert x.shape == (3, 224, 224) and y == 0
    test = next(read_test_batches(scan_folder(tmp_path / "big"), IMAGENET, 1))
    assert test.images.shape == (1, 3, 224, 224)


def test_unknown_data_spec():
    with pytest.raises(DatasetError, match="no such folder"):
        load_data("/definitely/not/here")


def test_tar_archive_of_a_folder_is_extracted_once(tmp_path, monkeypatch):
    import tarfile

    _folder(tmp_path / "ds" / "train")
    _folder(tmp_path / "ds" / "test", n=2)
    archive = tmp_path / "ds.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "ds", arcname="ds")
    calls = []
    real = S.safe_extract
    monkeypatch.setattr(S, "safe_extract", lambda a, d: calls.append(a) or real(a, d))
    first = load_data(str(archive))
    second = load_data(str(archive))
    assert len(calls) == 1  # the second load reuses the extraction
    assert first.name == "ds" and len(first.train) == 8 and len(second.test) == 4


def test_processes_building_one_cache_entry_take_turns(tmp_path):
    """The ranks of a distributed run on a fresh cache all ask for one entry at once (CI saw
    rank 1 die on 'Directory not empty' when two renamed their copies into place)."""
    import threading
    import time

    from deepres.data.splits import _cached_dir

    builds, errors = [], []

    def fill(tmp):
        builds.append(1)
        time.sleep(0.2)  # long enough that every thread arrives while the first builds
        (tmp / "x.npy").write_bytes(b"1" * 1000)

    def want():
        try:
            assert (_cached_dir(tmp_path / "entry", fill) / "x.npy").read_bytes() == b"1" * 1000
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=want) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(builds) == 1  # built once; the others waited and reused it
