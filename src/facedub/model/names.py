"""Choice sets of the model package, importable without torch (the CLI and UI read them)."""

from __future__ import annotations

from typing import Literal, get_args

ArchName = Literal["original", "lite", "hd"]
ARCH_NAMES: tuple[str, ...] = get_args(ArchName)
DEFAULT_ARCH: ArchName = "lite"
Side = Literal["source", "target"]
SIDES: tuple[str, ...] = get_args(Side)
