"""A shard server that fails as real ones do (issue 42 item 10): 500s and bodies cut mid-stream
are tried again (data/remote.py) and the data reads as it should; a server that keeps failing
is one line naming the URL and the tries; no access is not "no such shard"."""

import http.server
import os
import subprocess
import sys
import threading

import pytest

from deepres.data import DatasetError, load_data
from deepres.data.shards import write_shards

pytest.importorskip("aiohttp")  # fsspec's http:// file system


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Files of ``root`` with Range support; the first ``fail`` GETs of each path answer 500
    (or, with ``cut``, send half the body and close)."""

    root, fail, cut, seen = None, 0, False, {}

    def log_message(self, *args):
        pass

    def _file(self):
        path = os.path.join(self.root, self.path.lstrip("/"))
        return path if os.path.isfile(path) else None

    def do_HEAD(self):
        path = self._file()
        if path is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def do_GET(self):
        path = self._file()
        if path is None:
            self.send_error(404)
            return
        n = self.seen[self.path] = self.seen.get(self.path, 0) + 1
        data = open(path, "rb").read()
        start, end = 0, len(data) - 1
        if "Range" in self.headers:
            a, b = self.headers["Range"].split("=")[1].split("-")
            start, end = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
        body = data[start:end + 1]
        if n <= self.fail and not self.cut:
            self.send_error(500, "flaky")
            return
        self.send_response(206 if "Range" in self.headers else 200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if "Range" in self.headers:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if n <= self.fail and self.cut:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        self.wfile.write(body)


@pytest.fixture
def flaky_server(tiny_data, tmp_path):
    from deepres.data.datasource import resolve

    shards = tmp_path / "shards"
    write_shards(resolve(str(tiny_data)).indexes(), shards, 40)

    def start(fail, cut=False):
        handler = type("H", (_Flaky,), {"root": str(shards), "fail": fail, "cut": cut,
                                        "seen": {}})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    servers = []
    yield start, sorted(p.name for p in shards.glob("*.tar"))
    for s in servers:
        s.shutdown()


@pytest.mark.parametrize("cut", [False, True])
def test_passing_500s_and_cut_bodies_are_tried_again(flaky_server, tiny_data, cut):
    start, names = flaky_server
    base = start(fail=2, cut=cut)
    train = [n for n in names if n.startswith("train")]
    spec = f"{base}/train-{{000000..{len(train) - 1:06d}}}.tar"
    d = load_data(spec)
    assert len(d.train) == len(load_data(str(tiny_data)).train)


def test_a_server_that_keeps_failing_is_one_line_after_its_tries(flaky_server):
    start, _ = flaky_server
    base = start(fail=10**6)
    with pytest.raises(DatasetError, match=r"train-000000.tar: cannot be read .*after 4 tries"):
        load_data(f"{base}/train-{{000000..000000}}.tar")


def test_missing_credentials_are_not_no_such_shard(tmp_path):
    pytest.importorskip("s3fs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
               AWS_ENDPOINT_URL="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-m", "deepres", "data", "check",
                           "s3://bucket/x/train-{0..1}.tar"], env=env, capture_output=True,
                          text=True, timeout=120)
    err = done.stderr.strip()
    assert done.returncode == 2 and len(err.splitlines()) == 1, err
    assert "no such shard" not in err and ("no access" in err or "cannot be read" in err), err
