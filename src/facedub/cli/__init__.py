"""The ``facedub`` command line. Thin: parses options, calls a stage function, maps errors.

Each subcommand lives in its own module here with ``register(subparsers)``; its parser sets
``func`` to a ``run(args, reporter) -> int``. Exit codes (mapped only here):
0 success · 1 refused by a safety gate · 2 bad input or usage · 3 internal error · 130 cancelled.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import Sequence

from facedub import __version__
from facedub.errors import FacedubError

# Module names under facedub.cli, in the order --help lists them. A module missing from the
# tree (a stage not built yet) is skipped.
SUBCOMMANDS = ("extract", "faceset", "train", "detail", "model", "convert", "swap", "verify", "eval", "consent", "dataset", "batch", "ui")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors: one line, exit code 2
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="facedub",
        description=(
            "Consent-first face replacement in video. Typical chain: 'extract' faces of the source "
            "person and of the target footage, 'train' a model on both, 'convert' the target video. "
            "'swap' runs the whole chain in one command. Every output carries an invisible "
            "watermark, metadata and a manifest that 'verify' reads."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"facedub {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a full traceback on internal errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, only the final summary and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"facedub.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"facedub.cli.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from facedub.cli._reporter import ConsoleReporter

    from facedub.cli._options import check_limits

    reporter = ConsoleReporter(quiet=args.quiet)
    try:
        check_limits(args)  # numeric options in range, before any work
        return int(args.func(args, reporter) or 0)
    except FacedubError as e:
        reporter.close()
        print(f"facedub: {_label(e)}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        reporter.close()
        print("facedub: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not a user mistake
        reporter.close()
        if args.debug:
            traceback.print_exc()
        print(f"facedub: internal error: {type(e).__name__}: {e} (run with --debug for details)", file=sys.stderr)
        return 3
    finally:
        reporter.close()


def _label(e: FacedubError) -> str:
    return {1: "refused", 2: "error", 130: "stopped"}.get(e.exit_code, "error")


def entry() -> None:
    sys.exit(main())
