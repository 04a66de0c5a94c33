"""Shards read as streams (data/streams.py, ``--shuffle-buffer``): each process and worker has
its own shards, the order is a pure function of the seed and epoch, and a shuffle buffer."""

import numpy as np
import pytest

from deepres.cli import main
from deepres.data import DatasetError, remote
from deepres.data.streams import ShardCache, buffer_shuffle, stream_batches

ARCHIVE_OF = np.repeat(np.arange(12), 10)  # 12 shards of 10 samples, in shard order


def _epoch(epoch, rank, world=2, streams=2, buffer=4, steps=12):
    return stream_batches(ARCHIVE_OF, seed=3, epoch=epoch, rank=rank, world_size=world,
                          streams=streams, buffer=buffer, batch=5, steps=steps)


def test_each_process_and_stream_reads_its_own_shards_and_every_sample_once():
    seen = []
    shards_of = {}
    for rank in range(2):
        batches = _epoch(0, rank)
        assert len(batches) == 12 and all(len(b) == 5 for b in batches)
        for k, b in enumerate(batches):  # batch k comes from stream k mod 2 of this rank
            shards_of.setdefault((rank, k % 2), set()).update(ARCHIVE_OF[b].tolist())
        seen += [i for b in batches for i in b]
    assert sorted(seen) == list(range(120))  # equal shards, 4 streams of 3: each once
    groups = list(shards_of.values())
    assert all(len(g) == 3 for g in groups) and len(set().union(*groups)) == 12  # disjoint


def test_the_order_is_the_seeds_and_the_epochs():
    assert _epoch(0, 0) == _epoch(0, 0)
    assert _epoch(0, 0) != _epoch(1, 0)
    flat = [i for b in _epoch(0, 0) for i in b]
    assert flat != sorted(flat)  # shuffled within the streams, not read in shard order


def test_a_short_stream_wraps_within_the_epoch():
    batches = _epoch(0, 0, world=1, streams=1, steps=30)  # 150 samples asked of 120
    flat = [i for b in batches for i in b]
    assert len(flat) == 150 and set(flat) == set(range(120))


def test_the_buffer_moves_a_sample_at_most_its_length_ahead():
    order = np.arange(1000)
    out = buffer_shuffle(order, 50, np.random.default_rng(0))
    assert sorted(out.tolist()) == order.tolist()
    pos = np.empty(1000, int)
    pos[out] = np.arange(1000)
    assert (pos >= order - 50).all() and (pos != order).any()
    assert buffer_shuffle(order, 1, np.random.default_rng(0)).tolist() == order.tolist()


def test_too_few_shards_for_the_streams_is_an_error_that_says_what_to_do():
    with pytest.raises(DatasetError, match="12 shard.*--shard-size"):
        _epoch(0, 0, world=4, streams=4)


def test_a_shard_is_fetched_whole_once_and_a_late_sample_alone(tmp_path, monkeypatch):
    files = []
    for k in range(3):
        f = tmp_path / f"s{k}.tar"
        f.write_bytes(bytes([k]) * 100 + bytes(range(100)))
        files.append(str(f))
    whole, ranged = [], []
    monkeypatch.setattr(remote, "read_bytes", lambda p: whole.append(p) or open(p, "rb").read())
    real = remote.read_range
    monkeypatch.setattr(remote, "read_range",
                        lambda p, s, n: ranged.append(p) or real(p, s, n))
    cache = ShardCache(keep=2)
    assert cache.read(files[0], 100, 5) == bytes(range(5))
    assert cache.read(files[0], 0, 2) == bytes([0, 0])
    cache.read(files[1], 0, 1)
    cache.read(files[2], 0, 1)  # s0 is dropped now
    assert cache.read(files[0], 150, 3) == bytes([50, 51, 52])  # held back: read alone
    assert whole == files and ranged == [files[0]]
    with pytest.raises(OSError, match="bytes early"):
        cache.read(files[2], 190, 20)


def test_shuffle_buffer_on_a_folder_is_refused_in_one_line(tiny_data, tmp_path, capsys):
    code = main(["train", "--data", str(tiny_data), "--shuffle-buffer", "100", "--run-dir",
                 str(tmp_path / "run"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "--shuffle-buffer 100 streams shards" in err and "Traceback" not in err
