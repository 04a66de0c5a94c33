"""Publish a finished run's weights under deepres's own names (``deepres:NAME.TAG``).

    .venv/bin/python scripts/publish_weights.py RUN_DIR --tag cifar10 --scale full [--default]

Copies ``RUN_DIR/weights.safetensors`` into the package's ``models/published/`` as
``NAME.TAG.safetensors``, writes its model card (test error, recipe, iterations, data, machines,
commit, sha256) beside it from the run's own ``summary.json`` and ``config.json``, and adds or
replaces its entry in ``index.json``. ``--default`` makes it what ``deepres:NAME`` loads (the
longest-trained weights of that name should be).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "src" / "deepres" / "models" / "published"

DATA_NOTE = (
    "CIFAR-10 as JPEG files (`../shared/datasets/cifar10-jpg.tar.gz`, sha256 dd0e5712...f99c): "
    "all 60,000 images re-encoded as baseline JPEG at libjpeg quality 75 (lossy; colour kept "
    "at 16x16). What that costs, measured: networks trained on the lossless CIFAR-10 lose about "
    "10 points of test error on these images (akamaster's published ResNet-20: 8.27% reported "
    "on the original test set, 18.97% on this one; ResNet-56: 6.61% and 16.80%; "
    "`benchmarks/peer_weights.py`), so errors here are not comparable with published CIFAR-10 "
    "figures: compare methods on this same data. Trained on all 50,000 training images; tested on the 10,000 test "
    "images of the same archive.")


OLD_INIT = "fan_out (before fan_in was the default)"


def _commit(path: Path) -> str:
    out = subprocess.run(["git", "log", "-1", "--format=%H %cs", "--", str(path)], cwd=ROOT,
                         capture_output=True, text=True)
    return out.stdout.strip() or "(not committed yet)"


def _machines(summary: dict) -> list[str]:
    unknown = {"cpu": "not recorded (the run predates machine records)", "cores": "?",
               "precision": summary.get("precision", "?"), "torch": "?"}
    segs = summary.get("segments") or [{"from_step": 0, "to_step": summary["steps"],
                                        "seconds": summary.get("seconds"),
                                        "machine": summary.get("machine", unknown)}]
    rows = []
    for g in segs:
        m = g["machine"]
        flags = f" ({', '.join(m['cpu_flags'])})" if m.get("cpu_flags") else ""
        rows.append(f"| {g['from_step']:,}-{g['to_step']:,} | {m['cpu']}{flags}, "
                    f"{m.get('cores')} cores | "
                    f"{m['precision']} | torch {m.get('torch')} | {g.get('seconds') or 0:,.0f} |")
    return rows


def measured(path: Path, data: str) -> dict:
    """The weights' test error as ``deepres eval --precision fp32`` measures it: the figure the
    card states, the same on every CPU (bf16, which ``auto`` picks where native, moves it by a
    few images)."""
    from deepres.evaluate.runner import run_eval

    r = run_eval([str(path)], data, precision="fp32")
    return {"test_error": r["top1_error"], "test_top5_error": r["top5_error"],
            "test_images": r["images"]}


def card(name: str, tag: str, scale: str, run: Path, summary: dict, config: dict,
         sha: str, fp32: dict) -> str:
    o = config["optim"]
    err = fp32["test_error"]
    steps = ", ".join(f"{int(m * o['iterations']):,}" for m in o["milestones"])
    return "\n".join([
        f"# deepres:{name}.{tag}", "",
        f"`{name}` trained by deepres on CIFAR-10 ({scale} scale of `deepres reproduce "
        f"cifar-depth`).", "",
        "| | |", "|---|---|",
        f"| test error | **{100 * err:.2f}%** (top-5 {100 * fp32['test_top5_error']:.2f}%) on "
        f"{fp32['test_images']:,} test images: `deepres eval --weights deepres:{name}.{tag} "
        "--data ../shared/datasets/cifar10-jpg.tar.gz`, which measures in fp32 (its default), "
        "so the figure is the same on every CPU. The run itself measured "
        f"{100 * summary['test_error']:.2f}% at its last step, in "
        f"{config['run']['precision']}; `--precision auto` evaluates in bf16 on CPUs that have "
        "it natively, which moves the figure by a few images |",
        f"| iterations | {summary['steps']:,} of batch {o['batch_size']} "
        f"({'the paper' if summary['steps'] == 64_000 else 'not the paper'}'s 64,000) |",
        f"| recipe | `{config['recipe']}` (§4.2): SGD lr {o['lr']}, momentum {o['momentum']}, "
        f"weight decay {o['weight_decay']}, lr x{o['gamma']} at steps {steps}"
        + (f", warm-up at {o['warmup_lr']} until training error < "
           f"{o['warmup_until_error']:.0%}" if o.get("warmup_lr") else "")
        + f"; conv init {config['model'].get('conv_init') or OLD_INIT};"
        f" pad-4 crops and flips, per-pixel mean; seed {config['run']['seed']} |",
        f"| data | {DATA_NOTE} |",
        f"| run | `{run}` (config.json, metrics.jsonl, summary.json), commit {_commit(run)} |",
        f"| sha256 | `{sha}` |", "",
        "Training time by sitting:", "",
        "| steps | machine | precision | software | seconds |", "|---|---|---|---|---|",
        *_machines(summary), "",
        "Load it:", "",
        "```python",
        f'model = deepres.create_model("{name}", pretrained="deepres:{name}.{tag}")',
        "```",
        f"or `--weights deepres:{name}.{tag}` / `--init deepres:{name}.{tag}` on the command line.",
        ""])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--scale", required=True)
    ap.add_argument("--default", action="store_true")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" /
                                          "cifar10-jpg.tar.gz"))
    args = ap.parse_args()
    summary = json.loads((args.run / "summary.json").read_text())
    config = json.loads((args.run / "config.json").read_text())
    name = config["model"]["name"]
    stem = f"{name}.{args.tag}"
    FOLDER.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.run / "weights.safetensors", FOLDER / f"{stem}.safetensors")
    sha = hashlib.sha256((FOLDER / f"{stem}.safetensors").read_bytes()).hexdigest()
    fp32 = measured(FOLDER / f"{stem}.safetensors", args.data)
    (FOLDER / f"{stem}.md").write_text(card(name, args.tag, args.scale, args.run, summary,
                                            config, sha, fp32))
    index_path = FOLDER / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else []
    index = [e for e in index if not (e["name"] == name and e["tag"] == args.tag)]
    if args.default:
        for e in index:
            if e["name"] == name:
                e["default"] = False
    index.append({"name": name, "tag": args.tag, "file": f"{stem}.safetensors", "sha256": sha,
                  "test_error": fp32["test_error"], "test_images": fp32["test_images"],
                  "iterations": summary["steps"], "scale": args.scale,
                  "default": args.default or not any(e["name"] == name for e in index),
                  "card": f"{stem}.md"})
    index.sort(key=lambda e: (e["name"], e["tag"]))
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    print(f"published deepres:{stem} ({100 * fp32['test_error']:.2f}% test error), "
          f"sha256 {sha[:16]}...")


if __name__ == "__main__":
    main()
