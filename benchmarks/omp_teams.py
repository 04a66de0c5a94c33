"""One 32x32 ResNet-20 image, timed in the main thread: alone, after another (still living)
thread has run one inference (a second OpenMP team), and after that thread has ended. On 2
cores the second team made libgomp stop spinning between parallel regions, which is why
`deepres serve` runs all torch work in one thread (serve/batcher.py).

    .venv/bin/python benchmarks/omp_teams.py
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import torch

from deepres.loaded import load_predictor, probs_single

WEIGHTS = Path(__file__).resolve().parents[1] / "reports/runs/resnet20-s0/weights.safetensors"


def main() -> None:
    p = load_predictor(str(WEIGHTS), "cpu", "fp32", engine="torch")
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)

    def bench(label: str) -> None:
        for _ in range(5):
            probs_single(p, x)
        t = time.perf_counter()
        for _ in range(50):
            probs_single(p, x)
        print(f"{label}: {1000 * (time.perf_counter() - t) / 50:.2f} ms an image", flush=True)

    bench("main thread, alone")
    release = threading.Event()
    other = threading.Thread(target=lambda: (probs_single(p, x), release.wait()))
    other.start()
    time.sleep(0.5)
    bench("main thread, another thread has run torch once")
    release.set()
    other.join()
    bench("main thread, that thread ended")


if __name__ == "__main__":
    main()
