"""The server against hostile images and requests (the hardening issue's cases), each against a
running server: the status, the one-line message, the error counted, nothing decoded that the
budget refuses, nothing written to disk, and the server still answering."""

import io
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from helpers import make_weights

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from test_serve import _png, _request, start_server  # noqa: E402


@pytest.fixture
def hostile_server(tmp_path):
    weights = make_weights(tmp_path / "w.safetensors", size=32)
    spool = tmp_path / "tmp"
    spool.mkdir()
    base, _, proc = start_server(weights, "--max-queue", "4", "--max-bytes", "4000000",
                                 "--max-request-pixels", "50000000", "--timeout", "30",
                                 env={**os.environ, "TMPDIR": str(spool)})
    yield base, proc, spool
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _gray_png(w, h):
    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, format="PNG")
    return buf.getvalue()


def _multipart(parts):
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                    f"filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n".encode() + data
                    + b"\r\n" for name, data in parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _error(base, data, headers=None, query=""):
    status, body, _ = _request(base + "/v1/predict" + query, data,
                               headers or {"Content-Type": "image/png"})
    return status, json.loads(body)["error"] if status != 200 else json.loads(body)


def test_pixel_bombs_are_refused_from_their_headers_before_decoding(hostile_server):
    base, proc, _ = hostile_server
    big = _gray_png(9400, 9400)  # 88 MP, under Pillow's bomb limit, about 86 KB
    strip = _gray_png(100_000, 1)  # 100 kP, but 102 MP once its shorter side is resized to 32
    assert len(big) < 200_000 and len(strip) < 1_000
    before = _peak_rss_mb(proc.pid)
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:  # four at once
        answers = list(pool.map(lambda _: _error(base, big), range(4)))
    assert time.monotonic() - started < 10
    for status, err in answers:
        assert status == 413 and err["kind"] == "too_many_pixels"
        assert "9400x9400" in err["message"] and "--max-pixels" in err["message"]
    status, err = _error(base, strip)
    assert status == 413 and "100000x1" in err["message"] and "shorter side 32" in err["message"]
    # Nothing was decoded: the server's peak memory did not grow by the images' size.
    assert _peak_rss_mb(proc.pid) - before < 150
    assert _error(base, _png(1))[0] == 200  # and it goes on


def test_a_request_over_the_per_request_budget_is_refused(hostile_server):
    base = hostile_server[0]
    parts = [(f"{i}.png", _gray_png(4000, 4000)) for i in range(4)]  # 16 MP each, 64 MP in all
    status, err = _error(base, *_multipart(parts))  # each fits --max-pixels, not 50 MP in all
    assert status == 413 and "--max-request-pixels" in err["message"]


def test_unicode_digits_for_top_k_are_a_400_that_is_counted(hostile_server):
    base = hostile_server[0]
    for value in ("%C2%B2", "%E2%91%A0", "-1", "1e3"):  # "²", "①"
        status, err = _error(base, _png(2), query=f"?top_k={value}")
        assert status == 400 and "top_k must be an integer" in err["message"], value
    metrics = _request(base + "/metrics")[1].decode()
    assert 'deepres_errors_total{kind="bad_request"} 4' in metrics


def test_more_images_than_the_queue_holds_is_a_413_not_a_retry(hostile_server):
    base = hostile_server[0]
    status, body, headers = _request(base + "/v1/predict",
                                     *_multipart([(f"{i}.png", _png(i)) for i in range(5)]))
    err = json.loads(body)["error"]
    assert status == 413 and err["kind"] == "too_many_images" and "--max-queue" in err["message"]
    assert "Retry-After" not in headers


def test_multipart_uploads_stay_in_memory(hostile_server):
    base, _, spool = hostile_server
    noise = Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3))
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    assert len(buf.getvalue()) > 1_100_000  # over Starlette's 1 MB spooling threshold
    status, answer = _error(base, *_multipart([("big.png", buf.getvalue()), ("s.png", _png(3))]))
    assert status == 200 and len(answer["results"]) == 2
    assert list(spool.iterdir()) == []  # nothing reached the temporary folder


def test_idle_and_slow_clients_cannot_shut_out_a_good_one(tmp_path):
    import socket
    import statistics

    base, port, proc = start_server(make_weights(tmp_path / "w.safetensors", size=32),
                                    "--max-connections", "100", "--header-timeout", "3",
                                    "--timeout", "2")
    idle = []
    try:
        for _ in range(300):  # three times the cap, each sending half a request line
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HT")
            idle.append(s)
        times = []
        for i in range(20):  # a well-behaved client meanwhile
            t = time.monotonic()
            assert _request(base + "/v1/predict", _png(i), {"Content-Type": "image/png"},
                            timeout=10)[0] == 200
            times.append(time.monotonic() - t)
        assert statistics.quantiles(times, n=100)[98] < 3.0  # p99 of its latencies
        time.sleep(4)  # past --header-timeout every idle connection has been closed
        closed = 0
        for s in idle:
            try:
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
        assert closed == len(idle)
        assert _request(base + "/healthz")[0] == 200
        # A body that trickles in: 408 after --timeout, not a held worker.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                      b"Content-Length: 1000\r\n\r\n" + b"x" * 10)
            answer = s.recv(200)
        assert answer.startswith(b"HTTP/1.1 408")
    finally:
        for s in idle:
            s.close()
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "accept()" not in err.decode() and "Traceback" not in \
        err.decode()


def test_stalled_v2_bodies_get_408_and_cannot_lock_out_healthz(tmp_path):
    """Issue 42: headers and `{` sent to /v2/.../infer held the connection for ever; 45 such
    clients against --max-connections 40 locked out /healthz, and each one dropped logged a
    traceback."""
    import socket

    base, port, proc = start_server(make_weights(tmp_path / "w.safetensors", size=32),
                                    "--max-connections", "40", "--timeout", "2")
    name = json.loads(_request(base + "/v1/model")[1])["model"]
    stalled = []
    try:
        for _ in range(45):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(f"POST /v2/models/{name}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      "application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
            stalled.append(s)
        t0 = time.monotonic()
        answers = []
        for s in stalled:  # 408 after --timeout, then closed; those past the cap at once
            answer = b""
            try:
                while chunk := s.recv(1000):
                    answer += chunk
            except ConnectionResetError:
                answer = b"reset"
            answers.append(answer)
        assert time.monotonic() - t0 < 8
        late = [a for a in answers if a.startswith(b"HTTP/1.1 408")]
        assert len(late) >= 35 and late[0].endswith(b'(--timeout)"}'), answers
        assert _request(base + "/healthz", timeout=5)[0] == 200
        # a client that leaves halfway through its body is counted, not a traceback
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"POST /v2/models/{name}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: "
                      "1000\r\n\r\n{\"inputs\"".encode())
        time.sleep(0.5)
        assert _request(base + "/healthz", timeout=5)[0] == 200
    finally:
        for s in stalled:
            s.close()
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err.decode(), err.decode()[-2000:]


def test_a_jpeg_scan_bomb_is_a_quick_400_and_the_server_goes_on(hostile_server):
    from helpers import scan_bomb_jpeg

    base, proc, _ = hostile_server
    t0 = time.monotonic()
    status, error = _error(base, scan_bomb_jpeg(4096, 1000), {"Content-Type": "image/jpeg"})
    assert status == 400 and error["kind"] == "bad_image" and "scans" in error["message"]
    assert time.monotonic() - t0 < 2.0
    assert _error(base, _png(1))[0] == 200


def test_decoding_memory_is_bounded_across_concurrent_requests(tmp_path):
    """Issue 42: six ~4 KB requests (5000x5000 WebP) took a server from 686 MB to 4,383 MB:
    the pixel budget held per request, not across requests decoding at once. With the budget
    at one such image, six at once cost about what one does."""
    base, _, proc = start_server(make_weights(tmp_path / "w.safetensors", size=32),
                                 "--max-request-pixels", "30000000", "--timeout", "120")
    try:
        buf = io.BytesIO()
        Image.new("RGB", (5000, 5000), (120, 30, 200)).save(buf, format="WEBP", quality=50)
        webp = buf.getvalue()
        assert len(webp) < 60_000  # 45 KB for 25 million pixels
        base_mb = _peak_rss_mb(proc.pid)
        assert _error(base, webp, {"Content-Type": "image/webp"})[0] == 200
        one = _peak_rss_mb(proc.pid) - base_mb
        with ThreadPoolExecutor(6) as pool:
            statuses = [s for s, _ in pool.map(
                lambda _: _error(base, webp, {"Content-Type": "image/webp"}), range(6))]
        six = _peak_rss_mb(proc.pid) - base_mb
        assert statuses == [200] * 6
        print(f"peak RSS growth: one request {one:.0f} MB, six at once {six:.0f} MB")
        assert one > 100 and six < 2 * one, (one, six)  # was 6.2x: 624 MB, then 3,882 MB
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_against_a_live_server(tmp_path):
    """Issue 42 item 14: a schema-driven fuzz run (Schemathesis, from /openapi.json) against a
    real server: examples, coverage, fuzzing and stateful phases, no 500 and no hang (877
    cases in 18 s on a Zen 3)."""
    import shutil
    import subprocess
    import sys

    st = shutil.which("st") or os.path.join(os.path.dirname(sys.executable), "st")
    if not os.path.exists(st):
        pytest.skip("schemathesis is not installed (it is in the [dev] extra)")
    base, _, proc = start_server(make_weights(tmp_path / "w.safetensors", size=32),
                                 "--timeout", "5")
    try:
        done = subprocess.run([st, "run", base + "/openapi.json", "--checks",
                               "not_a_server_error", "--max-examples", "30",
                               "--request-timeout", "20"], capture_output=True, text=True,
                              timeout=900)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Traceback" not in err.decode()
