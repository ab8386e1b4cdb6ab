"""The ``conform42`` command line.

Subcommands are added as the parts they drive land. Exit codes follow the suite's contract:
0 success (or conformant), 1 non-conformant, 2 usage or suite error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.table import Table

from suite.catalogue import AREAS, LEVELS, PROFILES, CatalogueError, Requirement, load_catalogue
from suite.diff import ResultsFileError, diff_results, load_results, render_diff
from suite.identity import describe
from suite.resources import SpecsNotFound
from suite.run_command import add_run_parser

__all__ = ["main"]

EXIT_OK = 0
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (exit 2): CI logs and scripts read the reason, not the usage
    block argparse prints before it. Subcommand parsers are of this class too (argparse's default)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _VersionAction(argparse.Action):
    """``--version``: what a run judges against (``suite.identity``), printed before any subcommand."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        try:
            text = describe()
        except (CatalogueError, SpecsNotFound, OSError) as exc:
            parser.exit(EXIT_USAGE, f"conform42: cannot read the specs: {exc}\n")
        sys.stdout.write(text)
        parser.exit(EXIT_OK)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="conform42",
        description="Conformance suite and load harness for the 42 family of OpenAI-compatible LLM APIs.",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the package version, the catalogue's and a digest of the specs, and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    reqs = commands.add_parser(
        "requirements",
        help="print the requirement catalogue",
        description="Print the requirement catalogue built from the source documents.",
    )
    reqs.add_argument("--profile", choices=PROFILES, help="only requirements that apply to this profile")
    reqs.add_argument(
        "--level",
        type=str.upper,
        choices=LEVELS,
        help="this level and every stronger one (MUST < SHOULD < MAY); default: all",
    )
    reqs.add_argument("--area", action="append", choices=AREAS, help="only this area (repeatable)")
    reqs.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    reqs.set_defaults(handler=_cmd_requirements)

    add_run_parser(commands)

    diff = commands.add_parser(
        "diff",
        help="compare two runs' results.json: what newly fails, errors, skips or passes",
        description="Compare two results.json files written by `conform42 run --report`. Exit codes: "
        "1 when a MUST requirement newly fails, 0 otherwise, 2 for a missing or unreadable file.",
    )
    diff.add_argument("old", type=Path, metavar="OLD", help="the earlier run's results.json")
    diff.add_argument("new", type=Path, metavar="NEW", help="the later run's results.json")
    diff.add_argument("--json", action="store_true", help="print the comparison as JSON")
    diff.set_defaults(handler=_cmd_diff)

    # Parsed by the load harness itself; listed here so `conform42 --help` shows it.
    commands.add_parser(
        "load",
        help="run the Locust load harness (see `conform42 load --help`)",
        add_help=False,
    )

    # Parsed by the reference server itself; listed here so `conform42 --help` shows it.
    commands.add_parser(
        "serve",
        help="start the bundled reference server (see `conform42 serve --help`)",
        add_help=False,
    )
    return parser


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render_markdown(requirements: Sequence[Requirement]) -> str:
    lines = [
        "| ID | Level | Profile | Area | Statement | Source |",
        "|---|---|---|---|---|---|",
    ]
    for r in requirements:
        source = f"{r.source.file}: “{_markdown_cell(r.source.quote)}”"
        lines.append(
            f"| {r.id} | {r.level} | {r.profile} | {r.area} | {_markdown_cell(r.statement)} | {source} |"
        )
    return "\n".join(lines)


def _render_table(requirements: Sequence[Requirement], console: Console) -> None:
    table = Table(title=f"conform42 requirements ({len(requirements)})", show_lines=False)
    for column in ("ID", "Level", "Profile", "Area", "Statement"):
        table.add_column(column, overflow="fold")
    for r in requirements:
        table.add_row(r.id, r.level, r.profile, r.area, r.statement)
    console.print(table)


def _cmd_requirements(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    selected = catalogue.select(profile=args.profile, level=args.level, areas=args.area)
    if args.format == "json":
        payload = {"count": len(selected), "requirements": [r.to_dict() for r in selected]}
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(_render_markdown(selected) + "\n")
    else:
        _render_table(selected, Console())
    return EXIT_OK


def _cmd_diff(args: argparse.Namespace) -> int:
    try:
        old, new = load_results(args.old), load_results(args.new)
    except ResultsFileError as exc:
        sys.stderr.write(f"conform42 diff: {exc}\n")
        return EXIT_USAGE
    result = diff_results(old, new)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_diff(result, str(args.old), str(args.new)))
    return result.exit_code


def _exec_module(module: str, args: Sequence[str]) -> None:
    """Replace this process with ``python -m MODULE ARGS``.

    The suite never imports the reference server or the load harness (ARCHITECTURE.md; importing Locust
    would also monkey-patch this process with gevent). Exec keeps signals and the exit code theirs.
    """
    os.execv(sys.executable, [sys.executable, "-m", module, *args])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``conform42`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        _exec_module("reference_server", argv[1:])
    if argv[:1] == ["load"]:
        _exec_module("loadtests", argv[1:])
    parser = _build_parser()
    # `run` passes everything after `--` to pytest untouched.
    passthrough: list[str] = []
    if "--" in argv:
        passthrough = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    args = parser.parse_args(argv)
    args.pytest_args = passthrough
    try:
        code: int = args.handler(args)
    except (CatalogueError, SpecsNotFound) as exc:
        Console(stderr=True).print(f"[bold red]conform42:[/] {exc}", highlight=False)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
