"""``/metrics``: counters and histograms in Prometheus' text format, summed over the server's
processes.

With ``--workers N`` each process counts its own requests; a scrape reaches one of them. So each
process writes a snapshot of its counts to a folder the supervisor made
(``DEEPRES_METRICS_DIR``): when it answers ``/metrics`` and at least once a second, atomically.
A scrape sums every process's latest snapshot, a dead worker's included, so counters never go
backwards when a worker is replaced (as Prometheus' own multiprocess mode keeps them).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .batcher import DynamicBatcher

METRICS_DIR_ENV = "DEEPRES_METRICS_DIR"
# Request latency buckets (seconds) and batch-size buckets (images).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """This process's counts; :meth:`render` gives every process's, summed."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)  # per bucket, the last is +Inf
        self.latency_sum = 0.0
        self.folder = Path(os.environ[METRICS_DIR_ENV]) if METRICS_DIR_ENV in os.environ \
            else None
        self.written = 0.0

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    def observe(self, seconds: float) -> None:
        """One request's time from arrival to answer."""
        i = next((i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b), len(LATENCY_BUCKETS))
        self.latency[i] += 1
        self.latency_sum += seconds

    def snapshot(self, b: DynamicBatcher) -> dict[str, Any]:
        s = b.stats
        return {"requests": dict(self.requests), "errors": dict(self.errors),
                "latency": list(self.latency), "latency_sum": self.latency_sum,
                "batches": s.batches, "images": s.images,
                "sizes": {str(k): v for k, v in s.sizes.items()},
                "queue_seconds": s.queue_seconds, "inference_seconds": s.inference_seconds}

    def publish(self, b: DynamicBatcher, every: float = 0.0) -> None:
        """Write this process's snapshot for the others to sum (at most once per ``every``
        seconds)."""
        if self.folder is None or time.monotonic() - self.written < every:
            return
        path = self.folder / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(b)))
        os.replace(tmp, path)
        self.written = time.monotonic()

    def _all(self, b: DynamicBatcher) -> list[dict[str, Any]]:
        if self.folder is None:
            return [self.snapshot(b)]
        self.publish(b)
        snaps = []
        for p in sorted(self.folder.glob("*.json")):
            try:
                snaps.append(json.loads(p.read_text()))
            except (OSError, ValueError):  # being replaced this instant: its next one counts
                continue
        return snaps

    def render(self, b: DynamicBatcher) -> str:
        snaps = self._all(b)
        t = _sum(snaps)
        lines = ["# TYPE deepres_processes gauge",  # whose counts are summed below
                 f"deepres_processes {len(snaps)}", "# TYPE deepres_requests_total counter"]
        lines += [f'deepres_requests_total{{endpoint="{k}"}} {v}'
                  for k, v in sorted(t["requests"].items())]
        lines += ["# TYPE deepres_errors_total counter"]
        lines += [f'deepres_errors_total{{kind="{k}"}} {v}' for k, v in sorted(t["errors"].items())]
        lines += ["# TYPE deepres_batches_total counter", f"deepres_batches_total {t['batches']}",
                  "# TYPE deepres_batch_images_total counter",
                  f"deepres_batch_images_total {t['images']}",
                  "# TYPE deepres_batch_size_total counter"]
        sizes = {int(k): v for k, v in t["sizes"].items()}
        lines += [f'deepres_batch_size_total{{size="{k}"}} {v}' for k, v in sorted(sizes.items())]
        lines += _histogram("deepres_batch_images", BATCH_BUCKETS, sizes)
        lines += _latency("deepres_request_seconds", t["latency"], t["latency_sum"])
        lines += ["# TYPE deepres_queue_seconds_total counter",
                  f"deepres_queue_seconds_total {t['queue_seconds']:.6f}",
                  "# TYPE deepres_inference_seconds_total counter",
                  f"deepres_inference_seconds_total {t['inference_seconds']:.6f}"]
        return "\n".join(_with_help(lines)) + "\n"


# What each metric counts, said in the scrape (Prometheus' # HELP line before its # TYPE).
HELP = {
    "deepres_processes": "server processes whose counts are summed in this scrape",
    "deepres_requests_total": "requests received, by endpoint",
    "deepres_errors_total": "requests answered with an error, by kind",
    "deepres_batches_total": "model batches run",
    "deepres_batch_images_total": "images run in model batches",
    "deepres_batch_size_total": "model batches run, by their number of images",
    "deepres_batch_images": "images per model batch",
    "deepres_request_seconds": "time from a request's arrival to its answer",
    "deepres_queue_seconds_total": "seconds images waited for a batch",
    "deepres_inference_seconds_total": "seconds spent running the model",
}


def _with_help(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.startswith("# TYPE "):
            name = line.split()[2]
            out.append(f"# HELP {name} {HELP.get(name, name)}")
        out.append(line)
    return out


def _sum(snaps: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"requests": {}, "errors": {}, "sizes": {},
                             "latency": [0] * (len(LATENCY_BUCKETS) + 1), "latency_sum": 0.0,
                             "batches": 0, "images": 0, "queue_seconds": 0.0,
                             "inference_seconds": 0.0}
    for s in snaps:
        for key in ("requests", "errors", "sizes"):
            for k, v in s.get(key, {}).items():
                total[key][k] = total[key].get(k, 0) + v
        total["latency"] = [a + b for a, b in zip(total["latency"], s.get(
            "latency", [0] * len(total["latency"])), strict=True)]
        for key in ("latency_sum", "batches", "images", "queue_seconds", "inference_seconds"):
            total[key] += s.get(key, 0)
    return total


def _histogram(name: str, buckets: tuple[int, ...], counts: dict[int, int]) -> list[str]:
    """A histogram of batch sizes, from the count of batches of each size."""
    lines = [f"# TYPE {name} histogram"]
    for b in buckets:
        lines.append(f'{name}_bucket{{le="{b}"}} {sum(v for k, v in counts.items() if k <= b)}')
    lines += [f'{name}_bucket{{le="+Inf"}} {sum(counts.values())}',
              f"{name}_sum {sum(k * v for k, v in counts.items())}",
              f"{name}_count {sum(counts.values())}"]
    return lines


def _latency(name: str, per_bucket: list[int], total: float) -> list[str]:
    lines, running = [f"# TYPE {name} histogram"], 0
    for b, n in zip((*LATENCY_BUCKETS, "+Inf"), per_bucket, strict=True):
        running += n
        lines.append(f'{name}_bucket{{le="{b}"}} {running}')
    return lines + [f"{name}_sum {total:.6f}", f"{name}_count {running}"]
