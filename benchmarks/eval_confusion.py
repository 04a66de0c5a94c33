"""What the confusion matrix costs `deepres eval`: the one evaluation loop
(evaluate/metrics.count_errors) over the CIFAR-10 JPEG test set with the confusion counts
(as eval runs it) and without, on the same decoded batches, alternated 3 times; and the time to
draw the `--confusion` PNG. Weights: the committed medium ResNet-20 (reports/runs/resnet20-s0).

    .venv/bin/python benchmarks/eval_confusion.py
"""

import statistics
import tempfile
import time
from pathlib import Path

from deepres.data import load_data
from deepres.data.testtime import test_batches
from deepres.evaluate.metrics import count_errors, explain
from deepres.evaluate.testing import load_predictor, probs_single
from deepres.report.confusion import draw_confusion

ROOT = Path(__file__).resolve().parents[1]
p = load_predictor(str(ROOT / "reports/runs/resnet20-s0/weights.safetensors"), "cpu", "auto")
splits = load_data(str(ROOT.parent / "shared/datasets/cifar10-jpg.tar.gz"))
batches = [(b.images, b.labels) for b in test_batches(splits.test, p.spec, 500)]
k = len(splits.classes)
times: dict[str, list[float]] = {"with confusion": [], "without": []}
for _ in range(3):
    for name, n in (("with confusion", k), ("without", 0)):
        t = time.perf_counter()
        m = count_errors(iter(batches), lambda x: probs_single(p, x), "cpu", None, n)
        times[name].append(time.perf_counter() - t)
for name, ts in times.items():
    print(f"{name:<15} median {statistics.median(ts):.2f} s over {len(ts)} passes of "
          f"{m['images']} images ({p.precision})")
ratio = statistics.median(times["with confusion"]) / statistics.median(times["without"])
print(f"ratio with/without: {ratio:.3f}")
m = count_errors(iter(batches), lambda x: probs_single(p, x), "cpu", None, k)
result = {"top1_error": m["top1_error"], "images": m["images"],
          **explain(m["confusion"], list(splits.classes))}
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    draw_confusion(result, Path(d) / "c.png")
    print(f"drawing the --confusion PNG: {time.perf_counter() - t:.2f} s")
