"""MkDocs hook: the command-line reference page, generated from deepres's own parser (every
flag as declared with its option), never written by hand."""

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


def on_files(files, config):
    files.append(File.generated(config, "cli.md", content=cli_page()))
    return files
