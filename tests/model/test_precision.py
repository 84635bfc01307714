import pytest
import torch

from facedub.errors import BadInput
from facedub.model.precision import bf16_cpu_ok, resolve_precision

CPU = torch.device("cpu")


def test_fp32_is_plain_arithmetic_everywhere():
    assert resolve_precision("fp32", CPU) is None
    assert resolve_precision("fp32", torch.device("cuda")) is None


def test_cpu_choices():
    assert resolve_precision("bf16", CPU) is torch.bfloat16  # asked for: even without fast units
    assert resolve_precision("auto", CPU) is (torch.bfloat16 if bf16_cpu_ok() else None)
    with pytest.raises(BadInput, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)


def test_unknown_name_is_a_user_error():
    with pytest.raises(BadInput, match="precision must be one of auto, fp32, bf16, fp16"):
        resolve_precision("int8", CPU)
