"""`deepres serve` used as its clients use it: a real server process on loopback, real
concurrent HTTP clients, bad input mixed in, SIGTERM with a request in flight."""

import asyncio
import io
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from deepres.cli import main
from deepres.serve.batcher import DynamicBatcher, QueueFull
from helpers import make_weights

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url, data=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=data, headers=headers or {},
                                 method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def start_server(weights, *flags, env=None):
    """`deepres serve` on a free port, once /readyz answers: (base URL, port, process)."""
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepres", "serve", "--weights", str(weights), "--port",
         str(port), "--precision", "fp32", *map(str, flags)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if _request(base + "/readyz", timeout=1)[0] == 200:
                return base, port, proc
        except OSError:
            pass
        if proc.poll() is not None:
            pytest.fail(proc.stderr.read().decode())
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the server never became ready")


@pytest.fixture
def server(tmp_path):
    weights = make_weights(tmp_path / "w.safetensors", size=32)
    base, _, proc = start_server(weights, "--max-wait-ms", "40", "--max-bytes", "200000")
    yield base, proc, weights
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _png(seed, size=40):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size + seed % 7, 3), dtype=np.uint8)).save(
        buf, format="PNG")
    return buf.getvalue()


def test_concurrent_clients_get_predicts_answers_batched(server, tmp_path, capsys):
    base, _, weights = server
    files = []
    for i in range(24):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(_png(i))
    capsys.readouterr()
    assert main(["predict", "--weights", str(weights), *map(str, files), "--json",
                 "--precision", "fp32", "--top-k", "3"]) == 0
    want = {r["file"]: r["predictions"] for r in json.loads(capsys.readouterr().out)}

    def ask(f):
        status, body, _ = _request(base + "/v1/predict?top_k=3", f.read_bytes(),
                                   {"Content-Type": "image/png"})
        assert status == 200
        return str(f), json.loads(body)["results"][0]["predictions"]

    with ThreadPoolExecutor(12) as pool:
        got = dict(pool.map(ask, files))
    for f, preds in got.items():
        assert [p["class"] for p in preds] == [p["class"] for p in want[f]]
        for a, b in zip(preds, want[f], strict=True):
            assert abs(a["probability"] - b["probability"]) < 2e-6
    metrics = _request(base + "/metrics")[1].decode()
    sizes = {int(line.split('"')[1]): int(line.split()[-1]) for line in metrics.splitlines()
             if line.startswith("deepres_batch_size_total{")}
    assert max(sizes) > 1  # concurrent requests were run together
    model = json.loads(_request(base + "/v1/model")[1])
    assert model["classes"] == ["class0", "class1", "class2"] and len(model["weights_sha256"]) == 64


def test_bad_input_gets_clear_errors_and_the_server_goes_on(server, tmp_path):
    base = server[0]
    bomb = io.BytesIO()
    Image.new("L", (10_000, 10_000)).save(bomb, format="PNG")  # 100 MP of zeros, small file
    tiff = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiff, format="TIFF")
    cases = [(b"not an image", 400, "not an image"), (_png(1)[:200], 400, "truncated"),
             (bomb.getvalue(), 413, "over the limit of 25,000,000 per image"),
             (tiff.getvalue(), 400, "TIFF"),
             (b"\x89PNG" + b"0" * 300_000, 413, "over 200000 bytes")]
    for data, status, text in cases:
        got, body, _ = _request(base + "/v1/predict", data, {"Content-Type": "image/png"})
        assert got == status and text in json.loads(body)["error"]["message"], (text, body)
    assert _request(base + "/v1/predict?top_k=0", _png(2))[0] == 400
    assert _request(base + "/healthz")[0] == 200
    assert _request(base + "/v1/predict", _png(3), {"Content-Type": "image/png"})[0] == 200
    status, page, headers = _request(base + "/")  # the page, names inserted as text only
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"/v1/predict" in page and b"textContent" in page and b"innerHTML" not in page
    metrics = _request(base + "/metrics")[1].decode()
    assert 'deepres_errors_total{kind="bad_image"} 3' in metrics
    assert 'deepres_errors_total{kind="too_many_pixels"} 1' in metrics
    assert 'deepres_errors_total{kind="too_large"} 1' in metrics


def test_sigterm_finishes_the_request_in_flight_then_exits_0(server):
    base, proc, _ = server
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_request, base + "/v1/predict", _png(5),
                              {"Content-Type": "image/png"})
        time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        status, body, _ = pending.result(timeout=30)
    assert status == 200 and json.loads(body)["results"]
    assert proc.wait(timeout=30) == 0


def test_a_lone_request_does_not_wait_and_announced_ones_are_batched():
    """A batch waits for more images only while requests are decoding (announced): one
    client does not pay --max-wait-ms; two whose decoding overlaps share a batch."""
    async def scenario():
        sizes = []

        def run(batch):
            sizes.append(len(batch))
            return torch.zeros(len(batch), 3)

        b = DynamicBatcher(run, max_batch=8, max_wait_ms=2000, max_queue=8)
        b.start()
        img = torch.zeros(3, 4, 4, dtype=torch.uint8)
        t0 = time.perf_counter()
        await b.submit([img])
        assert time.perf_counter() - t0 < 0.5 and sizes == [1]  # not the 2 s wait
        with b.announce(1):  # a second request still decoding when the first arrives
            first = asyncio.ensure_future(b.submit([img]))
            await asyncio.sleep(0.1)
        second = asyncio.ensure_future(b.submit([img]))
        await first
        await second
        assert sizes == [1, 2]
        await b.stop()

    asyncio.run(scenario())


def test_a_full_queue_is_refused_not_grown():
    async def scenario():
        def slow(batch):
            time.sleep(0.2)
            return torch.zeros(len(batch), 3)

        b = DynamicBatcher(slow, max_batch=1, max_wait_ms=0, max_queue=2)
        b.start()
        img = torch.zeros(3, 4, 4, dtype=torch.uint8)
        first = asyncio.ensure_future(b.submit([img]))
        await asyncio.sleep(0.05)  # running; the queue is empty again
        second = asyncio.ensure_future(b.submit([img, img]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await b.submit([img])
        assert len(await first) == 1 and len(await second) == 2
        await b.stop()

    asyncio.run(scenario())


def _browser():
    import shutil

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (`make browser-test` installs it)"
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        return None, ("no Chromium and chromedriver here: `make browser-test` installs Debian's "
                      "chromium and chromium-driver and runs this test")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=900,900"):
        opts.add_argument(arg)
    return (lambda: webdriver.Chrome(service=Service(driver), options=opts)), ""


def test_the_page_in_a_real_browser(server, tmp_path):
    """Headless Chromium loads the page, uploads an image and shows predict's top classes;
    a screenshot is kept in build/test-artifacts/serve-page.png."""
    from pathlib import Path

    start, why = _browser()
    if start is None:
        pytest.skip(why)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base = server[0]
    picture = tmp_path / "cat.png"
    picture.write_bytes(_png(11, size=64))
    want = json.loads(_request(base + "/v1/predict?top_k=5", picture.read_bytes(),
                               {"Content-Type": "image/png"})[1])["results"][0]["predictions"]
    browser = start()
    try:
        browser.get(base + "/")
        browser.find_element(By.ID, "file").send_keys(str(picture))
        WebDriverWait(browser, 30).until(
            lambda b: b.find_element(By.ID, "result").get_attribute("data-done") == "1")
        names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".prediction .name")]
        artifacts = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(artifacts / "serve-page.png"))
    finally:
        browser.quit()
    assert names == [p["class"] for p in want]


def test_two_worker_processes_serve_and_stop_with_status_0(tmp_path):
    weights = make_weights(tmp_path / "w.safetensors", size=32)
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "deepres", "serve", "--weights", str(weights),
                             "--port", str(port), "--workers", "2", "--precision", "fp32"],
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if _request(base + "/readyz", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        answers = {_request(base + "/v1/predict", _png(i), {"Content-Type": "image/png"})[0]
                   for i in range(20)}  # a new connection each: the two processes share them
        assert answers == {200}
        # /metrics sums both processes' counts, whichever answers the scrape
        want = ['deepres_processes 2', 'deepres_requests_total{endpoint="predict"} 20',
                'deepres_request_seconds_count 20',
                'deepres_batch_images_sum 22']  # and each process's warm-up image
        for _ in range(50):
            page = _request(base + "/metrics")[1].decode().splitlines()
            if all(w in page for w in want):
                break
            time.sleep(0.2)
        for _ in range(6):  # every scrape, not one in two
            page = _request(base + "/metrics")[1].decode().splitlines()
            assert all(w in page for w in want), [x for x in page if "_count" in x]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_an_exported_onnx_file_is_served_by_each_engine_with_torchs_answers(tmp_path, capsys,
                                                                            engine):
    pytest.importorskip(engine)
    weights = make_weights(tmp_path / "w.safetensors", size=32)
    onnx = tmp_path / "m.onnx"
    assert main(["export", "--weights", str(weights), "--format", "onnx", str(onnx)]) == 0
    files = []
    for i in range(12):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(_png(i))
    capsys.readouterr()
    assert main(["predict", "--weights", str(weights), *map(str, files), "--json",
                 "--precision", "fp32", "--engine", "torch", "--top-k", "3"]) == 0
    want = {r["file"]: r["predictions"] for r in json.loads(capsys.readouterr().out)}
    base, _, proc = start_server(onnx, "--engine", engine, "--max-wait-ms", "40")
    try:
        def ask(f):
            status, body, _ = _request(base + "/v1/predict?top_k=3", f.read_bytes(),
                                       {"Content-Type": "image/png"})
            assert status == 200, body
            return str(f), json.loads(body)["results"][0]["predictions"]

        with ThreadPoolExecutor(6) as pool:
            got = dict(pool.map(ask, files))
        for f, preds in got.items():
            assert [p["class"] for p in preds] == [p["class"] for p in want[f]]
            for a, b in zip(preds, want[f], strict=True):
                assert abs(a["probability"] - b["probability"]) < 1e-4
        model = json.loads(_request(base + "/v1/model")[1])
        assert model["engine"] == engine and model["precision"] == "fp32"
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_kept_alive_connection_answers_without_nagle_delay(server):
    """The listening socket says it is TCP, so each accepted connection gets TCP_NODELAY: on a
    kept-alive connection /healthz once took ~46 ms (Nagle's wait for the client's delayed
    ACK) against ~1.4 ms on a new one."""
    import http.client
    import statistics

    from deepres.serve.processes import bind

    sock = bind("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP
    sock.close()
    base, _, _ = server
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - t0)
        assert response.status == 200
    conn.close()
    assert statistics.median(times[5:]) < 0.02, times


def test_metrics_parse_with_prometheus_own_parser(server):
    """/metrics as Prometheus reads it: every family has its HELP and TYPE, counters end in
    _total (the parser strips it to name the family)."""
    parser = pytest.importorskip("prometheus_client.parser")
    base, _, _ = server
    assert _request(base + "/v1/predict", _png(1), {"Content-Type": "image/png"})[0] == 200
    text = _request(base + "/metrics")[1].decode()
    families = list(parser.text_string_to_metric_families(text))
    assert {f.name for f in families} >= {"deepres_requests", "deepres_errors",
                                           "deepres_batch_size", "deepres_request_seconds"}
    for family in families:
        assert family.documentation and family.documentation != family.name, family.name
    for line in text.splitlines():
        if line.startswith("# TYPE") and line.endswith(" counter"):
            assert line.split()[2].endswith("_total"), line
