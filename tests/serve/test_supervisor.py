"""What a supervisor (systemd, Kubernetes, a shell script) reads from `deepres serve`: one line
and exit 2 for a bad start, a dead worker logged and replaced, exit 0 after SIGTERM."""

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import make_weights

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from test_serve import _png, _port, _request  # noqa: E402


def _serve(*args):
    return subprocess.Popen([sys.executable, "-m", "deepres", "serve", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ready(base, proc, tries=600):
    for _ in range(tries):
        try:
            if _request(base + "/readyz", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    pytest.fail("the server never became ready")


def _children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.parametrize("workers", [1, 2])
def test_garbage_weights_are_one_line_and_exit_2_however_many_workers(tmp_path, workers):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"garbage" * 100)
    proc = _serve("--weights", bad, "--port", _port(), "--workers", workers)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err
    assert err.count("w.safetensors") == 1 and "deepres serve: http" not in err


def test_a_port_in_use_is_one_line_and_exit_2_with_no_banner(tmp_path):
    import socket

    weights = make_weights(tmp_path / "w.safetensors", size=32)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _serve("--weights", weights, "--port", taken.getsockname()[1])
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err
    assert "cannot listen on 127.0.0.1" in err and "--port" in err
    assert "deepres serve: http" not in err


@pytest.mark.skipif(not os.path.exists("/usr/bin/pgrep"), reason="needs pgrep")
def test_a_killed_worker_is_logged_and_replaced(tmp_path):
    weights = make_weights(tmp_path / "w.safetensors", size=32)
    port = _port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve("--weights", weights, "--port", port, "--workers", "2", "--precision", "fp32")
    try:
        _ready(base, proc)
        deadline = time.time() + 60
        while len(workers := _children(proc.pid)) < 2 and time.time() < deadline:
            time.sleep(0.2)
        victim = max(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.time() + 60
        while time.time() < deadline:  # a replacement appears
            kids = _children(proc.pid)
            if victim not in kids and len(kids) >= 2:
                break
            time.sleep(0.2)
        assert victim not in kids and len(kids) >= 2
        for i in range(8):  # and the service answers throughout
            assert _request(base + "/v1/predict", _png(i), {"Content-Type": "image/png"})[0] \
                == 200
        time.sleep(3)  # let the replacement load
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0
        assert f"(pid {victim}) died (killed by SIGKILL); started a replacement" in err
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_second_sigterm_exits_at_once_without_500s_or_tracebacks(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from test_serve import start_server

    # A ResNet-18 at 224x224 one image at a time: 20 requests take seconds, so they are in
    # flight at both signals (a batch no longer waits when nothing more is coming).
    weights = make_weights(tmp_path / "w.safetensors", name="resnet18", size=224)
    base, _, proc = start_server(weights, "--max-batch", "1")

    def ask(i):  # four images a request: each request takes a while even on a fast CPU
        body = b"".join(b"--zz\r\nContent-Disposition: form-data; name=\"f\"; filename=\""
                        + f"{i}-{k}.png".encode() + b"\"\r\n\r\n" + _png(i + k) + b"\r\n"
                        for k in range(4)) + b"--zz--\r\n"
        try:
            return _request(base + "/v1/predict", body,
                            {"Content-Type": "multipart/form-data; boundary=zz"}, timeout=60)[0]
        except OSError:
            return "dropped"

    with ThreadPoolExecutor(20) as pool:
        answers = [pool.submit(ask, i) for i in range(20)]
        for _ in range(300):  # until most have arrived (each takes ~0.4 s, one at a time)
            metrics = _request(base + "/metrics")[1].decode()
            if any(line.startswith('deepres_requests_total{endpoint="predict"}')
                   and int(line.split()[-1]) >= 12 for line in metrics.splitlines()):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        got = [a.result() for a in answers]
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err and "second SIGTERM: exiting now" in err
    assert 500 not in got


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_stops_every_process_and_frees_the_port(tmp_path, workers):
    """Issue 42: SIGHUP killed the --workers supervisor alone; its workers went on serving the
    port, /tmp/deepres-metrics-* stayed, and a restart said "port in use"."""
    import glob

    before = set(glob.glob("/tmp/deepres-metrics-*"))
    port = _port()
    proc = _serve("--weights", make_weights(tmp_path / "w.safetensors", size=32), "--port",
                  port, "--workers", workers, "--precision", "fp32")
    base = f"http://127.0.0.1:{port}"
    _ready(base, proc)
    children = _children(proc.pid)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    time.sleep(0.5)
    alive = [c for c in children if os.path.exists(f"/proc/{c}")
             and "Z" not in open(f"/proc/{c}/stat").read().split()[2]]
    assert not alive
    assert set(glob.glob("/tmp/deepres-metrics-*")) <= before
    from deepres.serve.processes import bind

    bind("127.0.0.1", port).close()  # free again: a restart can listen there
