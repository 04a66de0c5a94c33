"""The tar index (data/tarindex.py): members held as columns, and a tar of a folder listed in
the order a scan of the folder gives (data/folder.py ``index_members``)."""

import os
import pickle
import tarfile

import numpy as np

from deepres.data import resolve
from deepres.data.folder import index_members, scan_dataset
from deepres.data.tarindex import MemberRows, TarMember


def _rows() -> MemberRows:
    a = MemberRows.of_archive("/d/a.tar", [["x/1.jpg", 512, 10, 3], ["x/é.png", 1536, 20, 1]])
    b = MemberRows.of_archive("/d/b.tar", [["y/2.jpg", 512, 30, 0]])
    return MemberRows.concat([a, b])


def test_member_rows_give_the_members_they_hold():
    rows = _rows()
    assert len(rows) == 3 and rows.labels.tolist() == [3, 1, 0]
    member, label = rows[1]
    assert isinstance(member, TarMember) and label == 1
    assert (member, member.archive, member.name, member.offset, member.size) == (
        "/d/a.tar/x/é.png", "/d/a.tar", "x/é.png", 1536, 20)
    assert rows[-1][0] == "/d/b.tar/y/2.jpg" and rows[2][0].archive == "/d/b.tar"
    assert [m for m, _ in rows] == [rows[i][0] for i in range(3)] == [m for m, _ in rows[:]]
    assert rows.names_list() == ["x/1.jpg", "x/é.png", "y/2.jpg"]
    picked = rows.take([2, 0], labels=[7, 8])
    assert [(m, y) for m, y in picked] == [("/d/b.tar/y/2.jpg", 7), ("/d/a.tar/x/1.jpg", 8)]
    assert [(m, y) for m, y in pickle.loads(pickle.dumps(rows))] == list(rows)
    for bad in (3, -4):
        try:
            rows[bad]
        except IndexError:
            continue
        raise AssertionError(f"rows[{bad}] did not raise IndexError")


def test_a_tar_lists_a_nested_folder_in_the_order_a_folder_scan_does(tmp_path):
    root = tmp_path / "pics"
    names = ["train/cat/b.png", "train/cat/a b.png", "train/cat/a/z.png", "train/cat/a-b/y.png",
             "train/cat/ab.png", "train/cat/a.png", "train/cat/.hidden.png", "train/cat/__x.png",
             "train/cat/notes.txt", "train/dog/sub/deeper/q.png", "train/dog/p.png",
             "train/dog/sub/r.png", "train/dog/sub0/s.png", "train/dog/.git/t.png",
             "test/cat/1.png", "test/dog/2.png"]
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_bytes(b"x")
    with tarfile.open(tmp_path / "pics.tar", "w") as tf:
        for n in sorted(names, reverse=True):  # the archive's own order is not the folder's
            tf.add(root / n, arcname=f"pics/{n}")
    folder = scan_dataset(root)
    in_tar = resolve(str(tmp_path / "pics.tar")).indexes()
    for split in ("train", "test"):
        want = [(os.path.relpath(p, folder[split].root), y) for p, y in folder[split].samples]
        got = [(m.name.split(f"pics/{split}/", 1)[1], y) for m, y in in_tar[split].samples]
        assert got == want
        assert isinstance(in_tar[split].samples, MemberRows)
    assert in_tar["train"].classes == folder["train"].classes == ["cat", "dog"]
    assert [os.path.basename(m) for m in in_tar["train"].ignored] == ["notes.txt"]


def test_index_members_accepts_plain_lists_of_names():
    names = ["top/c1/b.png", "top/c1/a.png", "top/c0/x.jpg", "top/.DS_Store", "top/c0/../e.png"]
    split = index_members("arch", names, names)["train"]
    assert split.root == "arch/top" and split.classes == ["c0", "c1"]
    assert list(split.samples) == [("top/c0/x.jpg", 0), ("top/c1/a.png", 1), ("top/c1/b.png", 1)]
    assert split.labels.tolist() == [0, 1, 1] and isinstance(split.labels, np.ndarray)


def test_an_empty_tar_is_one_line_naming_what_it_lacks(tmp_path, capsys):
    from deepres.cli import main

    with tarfile.open(tmp_path / "empty.tar", "w"):
        pass
    assert main(["data", "check", str(tmp_path / "empty.tar")]) == 2
    assert "no class folders found" in capsys.readouterr().err
    assert MemberRows.of_archive("a.tar", []).names_list() == []
