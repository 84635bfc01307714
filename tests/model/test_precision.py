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


def test_fp16_on_cpu_is_refused_and_cuda_choices_are_dtypes():
    """CUDA choices checked with a stand-in device (no GPU needed): fp16 is fp16, fp32 is None."""
    import torch

    from facedub.errors import BadInput
    from facedub.model.precision import resolve_precision

    with pytest.raises(BadInput, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", torch.device("cpu"))
    assert resolve_precision("fp16", torch.device("cuda", 0)) is torch.float16
    assert resolve_precision("fp32", torch.device("cuda", 0)) is None
    with pytest.raises(BadInput, match="precision must be one of"):
        resolve_precision("int8", torch.device("cpu"))


@pytest.mark.gpu
def test_runner_on_cuda_in_mixed_precision_stays_close_to_fp32():
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from facedub.convert.runner import Runner
    from facedub.model import build_model, default_config

    torch.manual_seed(0)
    cfg = default_config("lite", width=0.25, learned_mask=True)

    class Loaded:
        net = build_model("lite", cfg).cuda()
        config = cfg

    x = np.random.default_rng(0).integers(0, 256, (4, cfg.size, cfg.size, 3), dtype=np.uint8)
    fp32, half = Runner(Loaded, precision="fp32"), Runner(Loaded, precision="auto")
    assert fp32.device.type == "cuda" and half.precision in ("bf16", "fp16")
    (a, _), (b, _) = fp32(x), half(x)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.5
