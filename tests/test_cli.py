"""The command line: models listing, help, and torchrun-sharded evaluation."""

import argparse
import json
import subprocess
import sys

from deepres.cli import main
from helpers import make_tiny_folder, make_weights


def test_models_json_counts_are_computed(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"name", "params", "macs"} <= set(rows["resnet50"])
    assert abs(rows["resnet50"]["macs"] - 4.09e9) / 4.09e9 < 0.01
    assert rows["resnet20"]["params"] == rows["plain20"]["params"]  # option A: no parameters
    # 26 of the paper's nets, 5 ResNeXt and wide ResNets, 6+3 pre-activation, 3 WRN
    assert len(rows) == 43
    assert rows["resnet50"]["stride_placement"] == "3x3 (torchvision's)"
    assert rows["resnet18"]["stride_placement"] is None


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "reproduce" in capsys.readouterr().out


def test_eval_under_torchrun_counts_each_image_once(tmp_path):
    data = make_tiny_folder(tmp_path / "tiny", test_per_class=7)  # 21 images: uneven shards
    w = make_weights(tmp_path / "w.safetensors")
    single = subprocess.run([sys.executable, "-m", "deepres", "eval", "--weights", str(w),
                             "--data", str(data), "--json", "--batch-size", "4"],
                            capture_output=True, text=True, timeout=120)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node=2", "-m", "deepres", "eval", "--weights", str(w),
                          "--data", str(data), "--json", "--batch-size", "4"],
                         capture_output=True, text=True, timeout=120)
    assert single.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    a, b = json.loads(single.stdout), json.loads(two.stdout.strip().splitlines()[-1])
    assert a["images"] == b["images"] == 21
    assert abs(a["top1_error"] - b["top1_error"]) < 1e-12
    # The confusion matrix is reduced across processes too: every image counted once.
    assert a["confusion"] == b["confusion"] and sum(map(sum, b["confusion"])) == 21


def test_help_does_not_import_torch():
    """`deepres --help` and every subcommand's help answer without importing torch."""
    import subprocess
    import sys

    code = ("import sys\nfrom deepres.cli import build_parser\np = build_parser()\n"
            "for argv in (['--help'], ['train', '--help'], ['eval', '--help'],"
            " ['export', '--help'], ['reproduce', '--help'], ['data', 'check', '--help']):\n"
            "    try:\n        p.parse_args(argv)\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stderr.strip().splitlines()[-1] == "False"


def test_every_serve_option_is_declared_once_and_reaches_the_config(monkeypatch):
    """serve's flags come from ServeConfig's fields: each field is set by the flag of its
    name, with the field's own default when not given."""
    import dataclasses

    from deepres import commands
    from deepres.cli import build_parser
    from deepres.serve.config import ServeConfig

    seen = {}

    def fake_check(cfg):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr("deepres.serve.processes.check_weights", fake_check)
    args = build_parser().parse_args(["serve", "--weights", "w.safetensors"])
    try:
        commands.cmd_serve(args)
    except SystemExit:
        pass
    assert seen["cfg"] == ServeConfig(weights="w.safetensors")
    args = build_parser().parse_args(["serve", "--weights", "w", "--timeout", "7",
                                      "--keep-alive", "2", "--max-top-k", "3", "--amp"])
    try:
        commands.cmd_serve(args)
    except SystemExit:
        pass
    cfg = seen["cfg"]
    assert (cfg.timeout_s, cfg.keep_alive_s, cfg.max_top_k, cfg.precision) == (7, 2, 3, "bf16")
    # every field has a flag: its own declaration, or one shared with eval and predict
    assert {f.name for f in dataclasses.fields(ServeConfig)} <= set(vars(args))


def test_the_readme_synopsis_lists_every_flag_of_every_command():
    """README's "Command line" block names each command's every flag (`--[no-]X` names both),
    and no flag in brackets that the parser does not know: compared with the parsers."""
    import argparse
    import re
    from pathlib import Path

    from deepres.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Command line", 1)[1].split("```", 2)[1]
    shown: dict[str, set[str]] = {}
    bracketed: dict[str, set[str]] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("deepres "):
            words = line.split()
            current = " ".join(words[1:3]) if words[1] == "data" else words[1]
        if current is None or line.startswith("#"):
            continue
        for part in re.findall(r"--(?:\[no-\])?[a-z0-9][a-z0-9-]*", line):
            names = ({part.replace("[no-]", ""), part.replace("[no-]", "no-")}
                     if "[no-]" in part else {part})
            shown.setdefault(current, set()).update(names)
        for inside in re.findall(r"\[([^\]]*(?:\[no-\][^\]]*)?)\]", line):
            bracketed.setdefault(current, set()).update(
                re.findall(r"--[a-z0-9][a-z0-9-]*", inside.replace("[no-]", "")))
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    problems = []
    for name, sub in commands.choices.items():
        inner = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        pairs = ([(f"{name} {n}", p) for n, p in inner[0].choices.items()] if inner
                 else [(name, sub)])
        for key, p in pairs:
            flags = {o for a in p._actions for o in a.option_strings
                     if o.startswith("--") and o != "--help"}
            missing = sorted(flags - shown.get(key, set()))
            unknown = sorted(bracketed.get(key, set()) - flags)
            if missing or unknown:
                problems.append(f"{key}: missing {missing}, unknown {unknown}")
    assert not problems, "\n".join(problems)


def test_every_data_flag_says_every_format_deepres_reads():
    """One table of what --data takes (data/config.py DATA_FORMATS, keyed as the readers of
    data/datasource.py), and every --data flag's help made from it: none omits shards, hf: or
    s3:// (some once did)."""
    from deepres.cli import build_parser
    from deepres.data.config import DATA_FORMATS
    from deepres.data.datasource import READERS

    assert set(DATA_FORMATS) == set(READERS)
    helps = []

    def walk(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
            elif "--data" in action.option_strings or (
                    action.dest == "path" and "data" in parser.prog):
                helps.append((parser.prog, action.help))

    walk(build_parser())
    assert len(helps) >= 7, helps  # train, eval, export, precise-bn, reproduce, data x2
    for prog, text in helps:
        for must in ("hf:PATH", "s3://", "shards", ".tar", "cifar10", "sample"):
            assert must in text, (prog, must)
