"""Shards in an object store (data/remote.py): a real S3-compatible server (moto, in server
mode on 127.0.0.1), shards uploaded to it, then training, a SIGKILL and resume, and eval."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from helpers import make_large_folder, run_killed_at

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")


@pytest.fixture
def s3(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert time.time() < deadline, "the S3 server did not start"
            time.sleep(0.1)
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("bucket")
    yield fs, {**os.environ, **env}
    server.terminate()
    server.wait(timeout=10)


def test_train_resume_and_eval_from_shards_in_s3(s3, tmp_path):
    from deepres.data import resolve
    from deepres.data.shards import write_shards

    fs, env = s3
    folder = make_large_folder(tmp_path / "big", 16, 5, seed=4)
    write_shards(resolve(str(folder)).indexes(), tmp_path / "shards", 10)
    fs.put(str(tmp_path / "shards") + "/", "bucket/shards/", recursive=True)
    url = "s3://bucket/shards/"

    def train(run, resume):
        where = ["--resume", str(run)] if resume else ["--run-dir", str(run)]
        return [sys.executable, "-m", "deepres", "train", "--model", "resnet8", "--data", url,
                "--epochs", "2", "--batch-size", "8", "--input-size", "48", "--seed", "2",
                "--checkpoint-every", "2", "--log-every", "1", "--precision", "fp32",
                "--workers", "2", *where]

    ref = tmp_path / "ref"
    done = subprocess.run(train(ref, False), env=env, capture_output=True, text=True,
                          timeout=300)
    out, err = done.stdout, done.stderr
    assert "streamed" in err and json.loads(out[out.index("{"):])["test_images"] == 10, err
    killed = tmp_path / "killed"
    run_killed_at(lambda resume: train(killed, resume), killed, kill_steps=[5], env=env)
    a, b = (load_file(str(r / "weights.safetensors")) for r in (ref, killed))
    assert all((a[k] == b[k]).all() for k in a)  # resumed from the store, bit-identically

    def error(data):
        done = subprocess.run([sys.executable, "-m", "deepres", "eval", "--weights",
                               str(ref / "weights.safetensors"), "--data", data, "--json",
                               "--precision", "fp32"], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout)
        return result["top1_error"], result["images"]

    assert error(url) == error(str(folder))


def test_shards_streamed_from_s3_train_as_the_same_shards_on_disk(s3, tmp_path):
    """--shuffle-buffer: each worker fetches its shards whole from the store (data/streams.py);
    the weights equal those of the same run reading the shards from the local disk."""
    from deepres.data import resolve
    from deepres.data.shards import write_shards

    fs, env = s3
    folder = make_large_folder(tmp_path / "big", 16, 4, seed=6)
    write_shards(resolve(str(folder)).indexes(), tmp_path / "shards", 8)
    fs.put(str(tmp_path / "shards") + "/", "bucket/streamed/", recursive=True)

    def train(data, run):
        done = subprocess.run(
            [sys.executable, "-m", "deepres", "train", "--model", "resnet8", "--data", data,
             "--epochs", "2", "--batch-size", "8", "--input-size", "48", "--seed", "3",
             "--precision", "fp32", "--workers", "2", "--shuffle-buffer", "5", "--run-dir",
             str(tmp_path / run)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return load_file(str(tmp_path / run / "weights.safetensors"))

    a, b = train("s3://bucket/streamed/", "s3"), train(str(tmp_path / "shards"), "disk")
    assert all((a[k] == b[k]).all() for k in a)


def test_store_failures_are_one_line(s3, tmp_path):
    fs, env = s3

    def check(data, extra=None):
        done = subprocess.run([sys.executable, "-m", "deepres", "data", "check", data],
                              env={**env, **(extra or {})}, capture_output=True, text=True,
                              timeout=120)
        return done.returncode, done.stderr.strip()

    code, err = check("s3://bucket/nothing/train-{0..1}.tar")
    assert code == 2 and "no such shard" in err and len(err.splitlines()) == 1
    fs.pipe("bucket/junk/train-0.tar", b"not a tar" * 100)
    code, err = check("s3://bucket/junk/train-0.tar")
    assert code == 2 and "not an uncompressed tar" in err and len(err.splitlines()) == 1
    # (one connection attempt per call: botocore's own retries of a refused connection are
    # what the seconds here went on, not what is tested)
    code, err = check("s3://bucket/x/", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                                         "AWS_MAX_ATTEMPTS": "1"})
    assert code == 2 and "s3://bucket/x/" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_two_processes_train_from_shards_in_s3(s3, tmp_path):
    from deepres.data import resolve
    from deepres.data.shards import write_shards

    fs, env = s3
    folder = make_large_folder(tmp_path / "big", 16, 5, seed=4)
    write_shards(resolve(str(folder)).indexes(), tmp_path / "shards", 10)
    fs.put(str(tmp_path / "shards") + "/", "bucket/shards/", recursive=True)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         "-m", "deepres", "train", "--model", "resnet8", "--data", "s3://bucket/shards/",
         "--epochs", "2", "--batch-size", "8", "--input-size", "48", "--precision", "fp32",
         "--workers", "1", "--run-dir", str(tmp_path / "run")],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["test_images"] == 10 and "2 process(es)" in done.stderr


def test_reads_in_order_and_out_of_order_give_the_stored_bytes(s3, tmp_path, monkeypatch):
    from deepres.data import remote
    from deepres.data.tarindex import TarMember, read_remote

    fs, _ = s3
    blob = os.urandom(3 * 2**20)
    (tmp_path / "blob.bin").write_bytes(blob)
    fs.put(str(tmp_path / "blob.bin"), "bucket/blob.bin")
    monkeypatch.setattr(remote, "READ_AHEAD", 64 * 1024)  # so that 3 MB holds many blocks
    url = "s3://bucket/blob.bin"
    import random

    spans = [(o, 5000) for o in range(0, 600_000, 5000)]  # in order: through the read-ahead
    spans += random.Random(0).sample([(o, 7001) for o in range(0, 3_000_000, 7001)], 60)
    for start, size in spans:  # then far apart: one exact ranged request each
        assert remote.read_range(url, start, size) == blob[start:start + size]
    local = str(tmp_path / "blob.bin")
    got = remote.read_ranges([(url, 10, 20), (local, 5, 6), (url, 2**21, 100),
                              ("s3://bucket/missing.bin", 0, 4)])
    assert got[:3] == [blob[10:30], blob[5:11], blob[2**21:2**21 + 100]]
    assert isinstance(got[3], OSError) and "missing.bin" in str(got[3])
    members = [TarMember(url, "a.jpg", 100, 50), TarMember(local, "b.jpg", 0, 8),
               TarMember(url, "c.jpg", len(blob) - 10, 20)]
    fetched = read_remote(members)
    assert fetched[0] == blob[100:150] and fetched[1] is None  # local: read as it decodes
    assert isinstance(fetched[2], OSError) and "10 bytes early" in str(fetched[2])


def test_data_shard_writes_to_the_store_never_a_local_s3_folder(s3, tiny_data, tmp_path,
                                                                  monkeypatch):
    """Issue 43 item 2: `data shard SRC s3://bucket/prefix/` exited 0 having written a local
    folder named `s3:/bucket/...`; now the shards are in the store, read back by `data check`."""
    fs, env = s3
    monkeypatch.chdir(tmp_path)
    done = subprocess.run([sys.executable, "-m", "deepres", "data", "shard", str(tiny_data),
                           "s3://bucket/made/", "--shard-size", "40"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "s3:").exists() and "s3://bucket/made/train-000000.tar" in done.stdout
    assert fs.exists("bucket/made/classes.json") and fs.exists("bucket/made/test-000000.tar")
    check = subprocess.run([sys.executable, "-m", "deepres", "data", "check",
                            "s3://bucket/made/"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0 and "all files decode" in check.stdout, check.stderr
    again = subprocess.run([sys.executable, "-m", "deepres", "data", "shard", str(tiny_data),
                            "s3://bucket/made/"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 2 and "holds files already" in again.stderr


def test_eval_reads_only_the_split_it_evaluates(s3, tmp_path, monkeypatch):
    """Counted on the wire (a proxy before the local S3 server): eval of the test split fetches
    the test shards and never a byte of a training shard; int8 calibration, which names the
    training split, fetches no test shard."""
    from deepres.data import resolve
    from deepres.data.shards import write_shards
    from helpers import CountingProxy, make_weights

    fs, env = s3
    folder = make_large_folder(tmp_path / "big", 12, 4, seed=5)
    write_shards(resolve(str(folder)).indexes(), tmp_path / "shards", 8)
    fs.put(str(tmp_path / "shards") + "/", "bucket/shards/", recursive=True)
    weights = make_weights(tmp_path / "w.safetensors", classes=("c0", "c1"), size=72)
    port = int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    with CountingProxy(port) as proxy:
        proxied = {**env, "AWS_ENDPOINT_URL": proxy.url, "DEEPRES_CACHE": str(tmp_path / "c")}
        done = subprocess.run([sys.executable, "-m", "deepres", "eval", "--weights",
                               str(weights), "--data", "s3://bucket/shards/", "--json",
                               "--precision", "fp32"], env=proxied, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout)["images"] == 8
        fetched = dict(proxy.fetched)
        train = {k: v for k, v in fetched.items() if "/train-" in k}
        test = {k: v for k, v in fetched.items() if "/test-" in k}
        assert test and sum(test.values()) > 0, fetched
        assert train == {}, f"eval fetched training shards: {train}"

        proxy.fetched.clear()
        from deepres.loaded import load_predictor
        from deepres.loaded.calibration import calibration_batches

        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("DEEPRES_CACHE", str(tmp_path / "c2"))
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()  # fsspec keeps one per arguments, not per env
        batches = calibration_batches(load_predictor(str(weights), precision="fp32"),
                                      "s3://bucket/shards/", images=16, batch_size=8)
        assert sum(len(b) for b in batches) == 16
        assert any("/train-" in k for k in proxy.fetched)
        assert not any("/test-" in k for k in proxy.fetched), dict(proxy.fetched)
