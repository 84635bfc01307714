"""Choice sets of the model package, importable without torch (the CLI and UI read them)."""

from __future__ import annotations

from typing import Literal, get_args

ArchName = Literal["original", "lite", "hd", "saehd"]
ARCH_NAMES: tuple[str, ...] = get_args(ArchName)
DEFAULT_ARCH: ArchName = "lite"
Side = Literal["source", "target"]
SIDES: tuple[str, ...] = get_args(Side)
# Number format of the model's arithmetic: auto = bfloat16 autocast where the CPU (AVX512-BF16 /
# AMX) or GPU supports it, else fp32; fp16 needs CUDA. See facedub.model.precision.
Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
