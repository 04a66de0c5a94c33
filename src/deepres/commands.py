"""What each ``deepres`` command does with its parsed arguments: it calls the library and
prints the result (escaped: names come from files, runtime/terminal.py). Parsing and the
training command's config are cli.py's."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields

from .runtime.options import MEASURING_PRECISION, RUNNING_PRECISION
from .runtime.terminal import safe


def cmd_models(args: argparse.Namespace) -> int:
    from .analysis.models_table import listed_models
    from .models.published import weights_for

    rows = listed_models()
    if args.patterns or args.pretrained:  # the rows list_models keeps, in its order
        if args.pretrained:  # NAME.TAG of published weights: asks torchvision (torch)
            from .models import list_models

            chosen = list_models(args.patterns or None, pretrained=True)
        else:  # list_models's rule on the committed table: no torch, as without a pattern
            import fnmatch

            chosen = [r["name"] for r in rows
                      if any(fnmatch.fnmatchcase(r["name"], p) for p in args.patterns)]
        if not chosen:
            print(f"deepres models: no model matches {' '.join(args.patterns)}"
                  f"{' with published weights' if args.pretrained else ''} (patterns are "
                  "shell-style: resnet5*, *wide*)", file=sys.stderr)
            return 2
        tags: dict[str, list[str]] = {}
        for n in chosen:
            base, _, tag = n.partition(".")
            tags.setdefault(base, []).append(tag)
        rows = [dict(r, **({"tags": tags[r["name"]]} if args.pretrained else {}))
                for r in rows if r["name"] in tags]
    for r in rows:  # deepres's own trained weights of the name (deepres:NAME[.TAG])
        r["published"] = [{"source": p.source, "default": p.default, "test_error": p.test_error,
                           "iterations": p.iterations, "scale": p.scale}
                          for p in weights_for(r["name"])]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<18} {'family':<9} {'params':>12} {'multiply-adds':>15}  input    "
          f"{'downsampling stride':<20} deepres weights (CIFAR-10 test error)")
    for r in rows:
        weights = ", ".join(f"{p['source']} {100 * p['test_error']:.2f}%"
                            for p in r["published"])
        print(f"{r['name']:<18} {r['family']:<9} {r['params'] / 1e6:>11.2f}M "
              f"{r['macs'] / 1e9:>14.3f}G  {r['input_size']}x{r['input_size']:<4}  "
              f"{r['stride_placement'] or '-':<20} {weights or '-'}".rstrip())
        if "tags" in r:
            print(f"{'':<18} pretrained: {', '.join(r['name'] + '.' + t for t in r['tags'])}")
    print("Bottleneck nets are counted with the stride in the 3x3 (torchvision's placement); "
          "the paper's own models put it in the first 1x1 (--stride-in-1x1), which Table 1's "
          "figures count (see reports/table1.md).")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from .data.check import dataset_report

    report = dataset_report(str(args.path))
    if report.get("cifar"):  # CIFAR's own batches: nothing to decode file by file
        c = report["cifar"]
        print(f"{safe(args.path)}: CIFAR batches, {len(report['classes'])} classes; train "
              f"{c['train']} images, test {c['test']} images")
        return 0
    first_classes = report["classes"]
    n_bad = sum(len(s["bad"]) for s in report["splits"].values())
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 1 if n_bad else 0
    print(f"{safe(args.path)}: {len(first_classes)} classes: "
          f"{', '.join(safe(c) for c in first_classes)}")
    for name, r in report["splits"].items():
        print(f"{name}: {r['images']} images"
              + (f", {r['ignored']} non-image files ignored" if r["ignored"] else ""))
        for line in r["refused"]:  # image formats deepres does not read, named
            print(f"  {safe(line)}")
        for cls, n in r["counts"].items():
            print(f"  {safe(cls):<24} {n}")
        shown = list(r["sizes"].items())
        print("  sizes: " + ", ".join(f"{k} ({v})" for k, v in shown[:8])
              + (f", and {len(shown) - 8} more sizes" if len(shown) > 8 else ""))
        print(f"  training would hold it {r['layout'].split(' ', 1)[1]}"
              if r["layout"].startswith("held") else f"  training would stream it: "
              f"{r['layout'].split(': ', 1)[-1]}")
        for b in r["bad"]:
            print(f"  BAD {safe(b['file'])}: {safe(b['reason'])}")
    print(f"{n_bad} bad file(s)" if n_bad else "all files decode")
    return 1 if n_bad else 0


def cmd_data_shard(args: argparse.Namespace) -> int:
    import shutil
    import tempfile
    from pathlib import Path

    from .data import DatasetError, remote, resolve
    from .data.shards import write_shards

    store = remote.is_url(str(args.out))  # s3://bucket/prefix/: written there, never a folder
    out = Path(tempfile.mkdtemp(prefix="deepres-shards-")) if store else Path(args.out)
    prefix = str(args.out).rstrip("/")
    if store and remote.listing(prefix + "/", "*"):
        raise DatasetError(f"{safe(args.out)}: holds files already; shards are written only "
                           "under a new or empty prefix (nothing is overwritten)")
    if not store and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{safe(args.out)}: exists and is not an empty folder; shards are "
                           "written only into a new or empty one (nothing is overwritten)")
    indexes = resolve(str(args.path)).indexes()
    if indexes is None:
        raise DatasetError(f"{safe(args.path)}: CIFAR's own batches hold no image files to "
                           "shard; give an image folder (../shared/datasets has CIFAR-10 "
                           "as JPEG files)")

    def publish(path: Path) -> None:  # each shard uploaded as it is written, then removed
        remote.upload(path, f"{prefix}/{path.name}")
        path.unlink()

    try:
        counts = write_shards(indexes, out, args.shard_size, args.seed,
                              publish if store else None)
    finally:
        if store:
            shutil.rmtree(out, ignore_errors=True)
    out = prefix if store else out  # type: ignore[assignment]
    for split, n in counts.items():
        print(f"{split}: {len(indexes[split])} samples in {n} shard(s) "
              f"{safe(out)}/{split}-000000.tar ... {split}-{n - 1:06d}.tar")
    print(f"classes: {safe(out)}/classes.json; train with --data {safe(out)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate.runner import run_eval

    result = run_eval(args.weights, args.data, crops=args.crops, scales=args.scales,
                      split=args.split,
                      tta=args.tta,
                      batch_size=args.batch_size, device=args.device,
                      precision=args.precision or MEASURING_PRECISION, model_name=args.model,
                      classes_file=args.classes, workers=args.workers, engine=args.engine)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if args.confusion:
        from .report.confusion import draw_confusion

        draw_confusion(result, args.confusion)
    if args.json:
        print(json.dumps(result))
        return 0
    top5 = (f", top-5 error {100 * result['top5_error']:.2f}%" if result["top5_meaningful"]
            else "")  # with 5 classes or fewer every label is in the top 5
    print(f"{result['protocol']}, {result['models']} model(s), {result['images']} images of "
          f"{safe(result['data'])} ({result['split']} split): "
          f"top-1 error {100 * result['top1_error']:.2f}%{top5}{_left_out(result['left_out'])}")
    print_explained(result)
    if args.confusion:
        print(f"wrote {args.confusion} (confusion matrix)")
    return 0


def _left_out(bad: list[dict]) -> str:
    """Said on eval's first line: the split's files that were not counted, and why."""
    if not bad:
        return ""
    shown = "; ".join(f"{safe(b['file'])}: {safe(b['reason'])}" for b in bad[:3])
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    return (f"; {len(bad)} file(s) of the split LEFT OUT, not counted ({shown}{more}; "
            "`deepres data check` lists them all)")


def print_explained(result: dict) -> None:
    """Per-class accuracy, precision and recall, and the most confused pairs."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    width = max(12, *(len(safe(c["class"])) for c in result["per_class"]))
    print(f"  {'class':<{width}} {'images':>7} {'accuracy':>9} {'precision':>10} {'recall':>7}")
    for c in result["per_class"]:
        print(f"  {safe(c['class']):<{width}} {c['images']:>7} {pct(c['accuracy']):>9} "
              f"{pct(c['precision']):>10} {pct(c['recall']):>7}")
    if result["most_confused"]:
        print("  most confused (true -> predicted): " + "; ".join(
            f"{safe(p['true'])} -> {safe(p['predicted'])} {p['count']} "
            f"({100 * p['share_of_true']:.1f}%)" for p in result["most_confused"][:5]))


def cmd_predict(args: argparse.Namespace) -> int:
    from .data.images import IMAGE_EXTENSIONS
    from .evaluate.predict import predict_files

    failed = seen = 0
    results = []
    for r in predict_files(args.weights, args.inputs, args.top_k, args.device,
                           args.precision, args.model, args.classes, args.batch_size,
                           args.workers, args.engine):
        seen += 1
        failed += "error" in r
        if args.json:
            results.append(r)
        elif "error" in r:
            print(f"{safe(r['file'])}: ERROR {safe(r['error'])}")
        else:  # class and file names come from files: escaped (runtime/terminal.py)
            preds = ", ".join(f"{safe(p['class'])} {100 * p['probability']:.1f}%"
                              for p in r["predictions"])
            print(f"{safe(r['file'])}: {preds}")
    if not seen:
        print(f"deepres: error: no image files in {safe(', '.join(args.inputs))} (accepted: "
              f"{', '.join(sorted(IMAGE_EXTENSIONS))})", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(results, indent=2))
    if failed:
        print(f"{failed} file(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export.writers import ExportOptions, export
    from .loaded import load_predictor
    from .runtime.files import check_output_path

    check_output_path(args.out)
    p = load_predictor(args.weights, model_name=args.model, classes_file=args.classes)
    for line in export(p, args.format, args.out, ExportOptions(
            args.data, args.calibration_images, args.dynamic_size)):
        print(line)
    return 0


def cmd_precise_bn(args: argparse.Namespace) -> int:
    from .train.precise_bn import precise_bn_file

    print(precise_bn_file(args.weights, args.data, args.out, device=args.device,
                          batches=args.batches, batch_size=args.batch_size))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    path = reproduce(args.experiment, scale=args.scale, seeds=args.seeds, data=args.data,
                     device=args.device, out=args.out, report_only=args.report_only)
    print(f"wrote {path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.config import ServeConfig
    from .serve.processes import bind, check_weights, serve

    given = {f.name: getattr(args, f.name) for f in fields(ServeConfig) if hasattr(args, f.name)}
    cfg = ServeConfig(**{**given, "precision": args.precision or RUNNING_PRECISION})
    # a bad file: one error, before any process starts; and the engine chosen, in one line
    print(check_weights(cfg), file=sys.stderr, flush=True)
    sock = bind(cfg.host, cfg.port)  # a port in use: a ServeError, one line, exit 2
    print(f"deepres serve: http://{cfg.host}:{cfg.port}/ ({cfg.workers} process(es)); "
          "SIGTERM or Ctrl-C stops it after the requests in flight", file=sys.stderr,
          flush=True)
    return serve(cfg, sock, cfg.workers)
