"""How long `deepres --help` and `deepres train --help` take (median of 7 runs each, fresh
processes), and whether they import torch. `--src DIR` times another checkout's source tree
(e.g. the commit before a change) with the same interpreter.

    .venv/bin/python benchmarks/help_time.py [--src path/to/src]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--src", default=os.path.join(os.path.dirname(__file__), "..", "src"))
args = parser.parse_args()
env = {**os.environ, "PYTHONPATH": os.path.abspath(args.src)}
probe = ("import runpy, sys; sys.argv = ['deepres', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('deepres', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)")
for argv in (["--help"], ["train", "--help"], ["eval", "--help"]):
    times = []
    for _ in range(7):
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", probe, *argv], env=env, capture_output=True,
                           text=True)
        times.append(time.perf_counter() - t)
    said = r.stderr.strip().splitlines()[-1]
    print(f"deepres {' '.join(argv):<14} median {statistics.median(times):.3f} s "
          f"(min {min(times):.3f}); {said}")
