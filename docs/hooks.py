"""MkDocs hooks: pages generated from deepres's own declarations, never written by hand: the
command-line reference (from the parser: every flag as declared with its option) and the data
formats (from the readers' table, data/config.py DATA_FORMATS, and DataConfig's options)."""

from __future__ import annotations

import argparse

from mkdocs.structure.files import File


def _commands(parser: argparse.ArgumentParser, prefix: str = "deepres"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def cli_page() -> str:
    from deepres.cli import build_parser

    parts = ["# Command-line reference", "",
             "Generated from `deepres`'s parser when the site is built: each command's `--help`.",
             ""]
    for name, parser in _commands(build_parser()):
        parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=100)
        parts += [f"## `{name}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def data_page() -> str:
    from deepres.data.config import DATA_FORMATS, DataConfig
    from deepres.runtime.options import declared

    parts = ["# Data formats", "",
             "What `--data` (train, eval, `data check`, int8 calibration) reads, from the readers'",
             "table; generated when the site is built.", "",
             "| format | what `--data` names |", "|---|---|"]
    parts += [f"| {name} | {text} |" for name, text in DATA_FORMATS.items()]
    parts += ["| sample | `sample`: the bundled CIFAR-10 cut (500 training and 100 test images "
              "per class) |", "", "## Data options of `deepres train`", "",
              "| flag | what it does |", "|---|---|"]
    parts += [f"| `--{(o.flag or name).replace('_', '-')}` | {o.help} |"
              for name, o in declared(DataConfig)]
    return "\n".join(parts) + "\n"


def on_files(files, config):
    files.append(File.generated(config, "cli.md", content=cli_page()))
    files.append(File.generated(config, "data.md", content=data_page()))
    return files
