"""Which number format the model computes in: shared by training and conversion."""

from __future__ import annotations

from typing import Any

from facedub.errors import BadInput
from facedub.model.names import PRECISIONS


def bf16_cpu_ok() -> bool:
    """The CPU has fast bfloat16 units (oneDNN says so: AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def resolve_precision(precision: str, device: Any) -> Any:
    """The autocast dtype for ``precision`` on ``device`` (a ``torch.device``); None = plain fp32."""
    import torch

    if precision not in PRECISIONS:
        raise BadInput(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "fp16":
            return torch.float16
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16":
        raise BadInput("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    if precision == "bf16" or bf16_cpu_ok():
        return torch.bfloat16
    return None
