"""WebDataset shards and plain tar archives, read in place (data/shards.py, data/tarindex.py),
and the one resolution of --data (data/datasource.py)."""

import io
import os
import tarfile

import pytest
from PIL import Image

from deepres.cli import main
from deepres.data import DatasetError, load_data, resolve
from deepres.data.images import decode_image
from deepres.data.shards import expand_braces, write_shards
from deepres.data.splits import cache_dir
from deepres.data.tarindex import TarMember
from helpers import make_large_folder


def test_brace_patterns_expand_as_webdataset_writes_them():
    assert expand_braces("s/train-{000..002}.tar") == [f"s/train-00{i}.tar" for i in range(3)]
    assert expand_braces("{train,test}-{0..1}.tar") == ["train-0.tar", "train-1.tar",
                                                        "test-0.tar", "test-1.tar"]
    assert expand_braces("plain.tar") == ["plain.tar"]
    with pytest.raises(DatasetError, match="counts down"):
        expand_braces("x-{5..1}.tar")
    import time

    t0 = time.perf_counter()  # issue 42: out of memory after 2 minutes
    for huge in ("x-{0..99999999}.tar", "x-{0..9999}-{0..9999}.tar"):
        with pytest.raises(DatasetError, match="more than 1,000,000 shards"):
            expand_braces(huge)
    assert time.perf_counter() - t0 < 10


def _pixels(ds):
    """The (label, pixels) pairs of a held split, in a canonical order."""
    return sorted((int(y), x.tobytes()) for x, y in zip(ds.images, ds.labels, strict=True))


def _shard(folder, out, size=20):
    from deepres.data.datasource import resolve as resolve_data

    return write_shards(resolve_data(str(folder)).indexes(), out, size)


def test_shards_hold_the_folders_images_and_classes(tiny_data, tmp_path):
    out = tmp_path / "shards"
    assert _shard(tiny_data, out) == {"train": 5, "test": 2}  # 96 and 24 samples
    folder, shards = load_data(str(tiny_data)), load_data(str(out))
    assert resolve(str(out)).kind == "shards" and shards.classes == folder.classes
    for split in ("train", "test"):
        assert _pixels(shards.split(split)) == _pixels(folder.split(split))
    pattern = str(out / "{train,test}-{000000..000001}.tar")  # two of five train shards
    assert len(load_data(pattern).train) == 40
    # Written again from the same folder: the same bytes (a shard set is reproducible).
    again = tmp_path / "again"
    _shard(tiny_data, again)
    assert (again / "train-000003.tar").read_bytes() == (out / "train-000003.tar").read_bytes()


def _tar(folder, path):
    with tarfile.open(path, "w") as tf:
        tf.add(folder, arcname="mydata")
    return path


def test_a_plain_tar_is_read_in_place_in_the_folders_order(tiny_data, tmp_path):
    archive = _tar(tiny_data, tmp_path / "mydata.tar")
    source = resolve(str(archive))
    assert source.kind == "tar"
    a, b = load_data(str(tiny_data)), load_data(str(archive))
    for split in ("train", "test"):
        assert (a.split(split).images == b.split(split).images).all()
        assert (a.split(split).labels == b.split(split).labels).all()
    assert not (cache_dir() / "extracted").exists() or not any(
        (cache_dir() / "extracted").iterdir())  # nothing was extracted
    index = source.indexes()["test"]
    member, label = index.samples[0]
    assert isinstance(member, TarMember) and member.endswith("mydata/test/class0/000.png")
    assert (decode_image(member) == decode_image(tiny_data / "test/class0/000.png")).all()


def test_large_images_in_shards_are_streamed_from_the_shards(tmp_path):
    import pickle

    from deepres.data.testtime import test_batches
    from deepres.inputspec import InputSpec

    folder = make_large_folder(tmp_path / "big", 12, 4, size=80, seed=1, learnable=False,
                               ext="jpg")
    _shard(folder, tmp_path / "shards", size=7)
    a, b = load_data(str(folder)), load_data(str(tmp_path / "shards"))
    assert not b.in_memory and b.layout.startswith("streamed")
    member = b.test.samples[0][0]
    copy = pickle.loads(pickle.dumps(member))  # as DataLoader workers receive it
    assert isinstance(copy, TarMember) and copy.read() == member.read()
    view = InputSpec(64, 72, __import__("torch").zeros(3))

    def seen(split):  # decoded in 2 DataLoader workers, every image once
        return sorted((int(y), x.numpy().tobytes()) for batch in test_batches(
            split, view, 3, workers=2) for x, y in zip(batch.images, batch.labels, strict=True))

    assert seen(a.test) == seen(b.test) and len(seen(b.test)) == 8


def test_shard_errors_name_the_file(tmp_path, capsys):
    good = tmp_path / "good"
    _tar_of(good / "train-000000.tar", [("a.jpg", _jpeg()), ("a.cls", b"0"), ("b.jpg", _jpeg())])
    with pytest.raises(DatasetError, match="sample b has an image and no .cls label"):
        load_data(str(good))
    (tmp_path / "junk-0.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(DatasetError, match="not an uncompressed tar"):
        load_data(str(tmp_path / "junk-{0..0}.tar"))
    assert main(["data", "check", str(tmp_path / "junk-{0..1}.tar")]) == 2
    err = capsys.readouterr().err
    assert "junk-1.tar: no such shard" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def _jpeg():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


def test_data_shard_never_writes_into_a_folder_with_files(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["data", "shard", str(tiny_data), str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert os.listdir(out) == ["keep.txt"]
    assert main(["data", "shard", str(tiny_data), str(tmp_path / "new"), "--shard-size",
                 "50"]) == 0
    assert sorted(os.listdir(tmp_path / "new")) == [
        "classes.json", "test-000000.tar", "train-000000.tar", "train-000001.tar"]


@pytest.fixture
def small_cache(tmp_path, monkeypatch):
    """A 1 MB tmpfs as the cache (skipped where tmpfs cannot be mounted)."""
    import subprocess

    mount = tmp_path / "cache"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    monkeypatch.setenv("DEEPRES_CACHE", str(mount))
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_dataset_larger_than_the_cache_disk_trains_from_shards(tmp_path, small_cache):
    import subprocess
    import sys

    # noise: about 16 KB a PNG, 1.5 MB in all
    folder = make_large_folder(tmp_path / "data", 40, 8, seed=3, learnable=False)
    big = sum(p.stat().st_size for p in folder.rglob("*.png"))
    assert big > 1024 * 1024  # larger than the whole cache disk
    _shard(folder, tmp_path / "shards", size=30)
    compressed = tmp_path / "data.tar.gz"
    with tarfile.open(compressed, "w:gz") as tf:
        tf.add(folder, arcname="data")
    cmd = [sys.executable, "-m", "deepres", "train", "--model", "resnet8", "--epochs", "1",
           "--batch-size", "16", "--input-size", "32", "--precision", "fp32"]
    env = {**os.environ, "DEEPRES_CACHE": str(small_cache)}
    done = subprocess.run([*cmd, "--data", str(tmp_path / "shards"), "--run-dir",
                           str(tmp_path / "run")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"test_images": 16' in done.stdout
    # A compressed archive must be extracted: refused before anything is written, naming
    # what it needs and where.
    done = subprocess.run([*cmd, "--data", str(compressed), "--run-dir",
                           str(tmp_path / "run2")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 2 and "extracting it needs" in done.stderr, done.stderr[-2000:]
    assert "uncompressed .tar" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    left = [p for p in (small_cache / "extracted").rglob("*") if p.is_file()]
    assert [p.name for p in left if p.stat().st_size or not p.name.endswith(".lock")] == []


def test_decoded_images_too_large_for_the_cache_disk_are_held_uncached(tiny_data, monkeypatch,
                                                                        capsys):
    import shutil
    from collections import namedtuple

    from deepres.data import splits as sources

    def entries():
        return set((sources.cache_dir() / "arrays").glob("*-fit"))

    before = entries()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 1000, 1000))
    splits = load_data(str(tiny_data))  # held in memory: 96 + 24 decoded 32x32 images
    assert len(splits.train) == 96 and splits.in_memory
    assert "decoded images not cached" in capsys.readouterr().err
    assert entries() == before


def test_shard_indexes_hold_image_sizes_so_no_image_is_read_again(tmp_path, monkeypatch):
    """The sizes (and unreadable images) come from the index pass, equal to a header scan of
    the folder they were made from; the scan then reads nothing (an object store once)."""
    from deepres.data import splits as sources

    folder = make_large_folder(tmp_path / "big", 6, 2, seed=3)
    odd = folder / "train" / "c0" / "wide.png"
    Image.new("RGB", (90, 70)).save(odd)
    (folder / "train" / "c1" / "broken.png").write_bytes(b"\x89PNG not really")
    _shard(folder, tmp_path / "shards", 5)
    want = sources.scan_headers(resolve(str(folder)).indexes()["train"], "folder-key")
    shards = resolve(str(tmp_path / "shards")).indexes()["train"]

    def no_reads(_path):
        raise AssertionError("an image was read again")

    monkeypatch.setattr(sources, "image_size", no_reads)
    sizes, unreadable = sources.scan_headers(shards, "shards-key")
    assert sizes == want[0] and sizes[(90, 70)] == 1 and sizes[(0, 0)] == 1
    assert [os.path.basename(p) for p in want[1]] == ["broken.png"]
    assert len(unreadable) == 1 and unreadable[0].endswith(".png")


def _tar_of(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("label", [b"1000000000000", b"9" * 30])
def test_a_huge_label_is_one_line_not_a_trillion_class_names(tmp_path, capsys, label):
    """Issue 42: a 13-byte .cls of 10^12 built 10^12 class names (5.9 GB, then MemoryError);
    30 digits gave an OverflowError traceback."""
    _tar_of(tmp_path / "s" / "train-000000.tar",
           [("a.jpg", _jpeg()), ("a.cls", b"0"), ("b.jpg", _jpeg()), ("b.cls", label)])
    with pytest.raises(DatasetError, match="sample b: the label .* is not a class number"):
        load_data(str(tmp_path / "s"))
    assert main(["data", "check", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "not a class number from 0 to 999,999" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_key_twice_in_a_shard_is_an_error_not_a_relabelled_sample(tmp_path, capsys):
    """Issue 42: the second `a` was dropped and the first image took its label; `data check`
    said nothing. Two images of one sample (KEY.jpg, KEY.seg.png) stay one sample."""
    _tar_of(tmp_path / "dup" / "train-000000.tar",
           [("a.jpg", _jpeg()), ("a.cls", b"0"), ("a.jpg", _jpeg()), ("a.cls", b"1")])
    assert main(["data", "check", str(tmp_path / "dup")]) == 2
    err = capsys.readouterr().err
    assert "the key a has a second image member" in err and "Traceback" not in err
    _tar_of(tmp_path / "two" / "train-000000.tar",
           [("a.jpg", _jpeg()), ("a.seg.png", _jpeg()), ("a.cls", b"1"), ("b.jpg", _jpeg()),
            ("b.cls", b"0")])
    d = load_data(str(tmp_path / "two"))
    assert len(d.train) == 2 and sorted(d.train.labels.tolist()) == [0, 1]


def test_only_empty_shards_are_an_error_not_all_files_decode(tmp_path, capsys):
    for i in range(2):  # issue 42: "all files decode", 0 images, exit 0
        _tar_of(tmp_path / "empty" / f"train-00000{i}.tar", [])
    assert main(["data", "check", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "2 shard(s) hold no samples" in err and len(err.strip().splitlines()) == 1


def test_training_from_train_only_shards_says_there_is_no_test_split(tiny_data, tmp_path,
                                                                     capsys):
    from deepres.data.datasource import resolve as resolve_data

    indexes = resolve_data(str(tiny_data)).indexes()
    indexes.pop("test")
    write_shards(indexes, tmp_path / "shards", 40)
    assert main(["train", "--data", str(tmp_path / "shards"), "--model", "resnet8",
                 "--iterations", "2", "--batch-size", "8", "--run-dir", str(tmp_path / "run"),
                 "--precision", "fp32"]) == 0
    err = capsys.readouterr().err
    assert "no test split (no test/ folder or test-*.tar shards)" in err
