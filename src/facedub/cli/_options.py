"""Ranges of numeric options, checked once for every command before any work starts.

``limit(parser, action, lo=..., hi=...)`` records the allowed range of an option the
parser just defined; :func:`check_limits` (called by :func:`facedub.cli.main` right after
parsing) raises BadInput — one line, exit 2 — naming the option, the value and the range.
Types are argparse's job; ranges are checked here so every command reports them the same way.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from facedub.errors import BadInput

_KEY = "_limits"


def limit(parser: argparse.ArgumentParser, action: argparse.Action, lo: float | None = None, hi: float | None = None,
          lo_open: bool = False, multiple: int | None = None) -> argparse.Action:
    """Record that ``action``'s value (when given) must lie in [lo, hi] (lo excluded if ``lo_open``)."""
    name = action.option_strings[0] if action.option_strings else (action.metavar or action.dest)
    limits = dict(parser.get_default(_KEY) or {})
    limits[action.dest] = (str(name), lo, hi, lo_open, multiple)
    parser.set_defaults(**{_KEY: limits})
    return action


def _fmt(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def check_limits(args: argparse.Namespace) -> None:
    for dest, (name, lo, hi, lo_open, multiple) in (getattr(args, _KEY, None) or {}).items():
        v: Any = getattr(args, dest, None)
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise BadInput(f"{name} {v}: must be a finite number")
        if lo is not None:
            if lo_open and v <= lo:
                raise BadInput(f"{name} {_fmt(v)}: must be more than {_fmt(lo)}")
            if not lo_open and v < lo:
                raise BadInput(f"{name} {_fmt(v)}: must be at least {_fmt(lo)}")
        if hi is not None and v > hi:
            raise BadInput(f"{name} {_fmt(v)}: must be at most {_fmt(hi)}")
        if multiple and v % multiple:
            raise BadInput(f"{name} {_fmt(v)}: must be a multiple of {multiple}")
