"""Progress off a terminal (a log, CI, Slurm): plain lines at an interval, none for short loops."""

import os
import subprocess
import sys
import tarfile

from deepres.data.progress import _line, progress
from helpers import make_tiny_folder


def test_plain_progress_lines_show_life_in_a_log(tmp_path):
    data = make_tiny_folder(tmp_path / "d", per_class=40)
    archive = tmp_path / "d.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(data, arcname="d")
    env = {**os.environ, "DEEPRES_PROGRESS_SECONDS": "0.001", "XDG_CACHE_HOME": str(tmp_path / "c"),
           "DEEPRES_CACHE": str(tmp_path / "c")}
    done = subprocess.run([sys.executable, "-m", "deepres", "data", "check", str(archive)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [x for x in done.stderr.splitlines() if "%) in" in x]
    assert lines and all("\r" not in x and "about" in x for x in lines)
    assert any(x.startswith("extracting ") for x in lines) or any(
        x.startswith("checking ") for x in lines)
    quiet = subprocess.run([sys.executable, "-m", "deepres", "data", "check", str(data)],
                           capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "%) in" not in quiet.stderr  # short: nothing printed


def test_the_line_says_count_share_and_time_left():
    assert _line("scanning x", 50, 200, "img", 10) == (
        "scanning x: 50/200 img (25%) in 10 s, about 30 s left")
    assert _line("reading", 7, None, "file", 3) == "reading: 7 file in 3 s"
    assert list(progress(range(5), "d")) == [0, 1, 2, 3, 4]
