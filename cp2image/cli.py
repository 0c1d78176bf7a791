"""`cp2image` command line: one subcommand per pipeline stage.

Each subcommand lives in `cp2image/commands/<name>.py` with `add_parser(subparsers)`
and `run(args) -> int`; heavy imports happen inside `run`, so `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: tuple[str, ...] = (  # in pipeline order, as `cp2image --help` lists them
    "ingest",
    "features",
    "simulate",
    "sim_check",
    "train",
    "regressor",
    "critic",
    "bundle",
    "evaluate",
    "generate",
    "perturb",
    "figures",
    "table1",
    "hub",
    "space",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cp2image",
        description="Generate single-cell images from CellProfiler features (CP2Image).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"cp2image.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as err:
        print(f"cp2image {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
