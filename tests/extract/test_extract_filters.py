"""Per-face filters and the config's checks."""

from __future__ import annotations

import numpy as np
import pytest

from facedub.errors import BadInput
from facedub.extract.config import ExtractConfig
from facedub.extract.filters import reject_reason, sharpness


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)


def test_sharpness_drops_with_blur() -> None:
    import cv2

    img = _texture()
    s0 = sharpness(img)
    s1 = sharpness(cv2.GaussianBlur(img, (0, 0), 1.5))
    s2 = sharpness(cv2.GaussianBlur(img, (0, 0), 4.0))
    assert s0 > s1 > s2 >= 0
    assert sharpness(np.full((256, 256, 3), 90, np.uint8)) == 0.0


def test_sharpness_ignores_the_background() -> None:
    img = np.full((256, 256, 3), 120, np.uint8)
    img[:40] = _texture()[:40]  # busy backdrop above the face only
    assert sharpness(img) == 0.0


def test_reject_reason_order_and_thresholds() -> None:
    cfg = ExtractConfig(min_size=50, min_score=0.6, blur_threshold=20)
    assert reject_reason(49, 0.9, 100, cfg) == "too_small"
    assert reject_reason(80, 0.5, 100, cfg) == "low_score"
    assert reject_reason(80, 0.9, 19.9, cfg) == "blurry"
    assert reject_reason(80, 0.9, None, cfg) is None  # sharpness not measured yet
    assert reject_reason(80, 0.9, 20, cfg) is None
    off = ExtractConfig(blur_threshold=0)
    assert reject_reason(80, 0.9, 0.0, off) is None


@pytest.mark.parametrize("kw", [{"every": 0}, {"min_size": -1}, {"blur_threshold": -1}, {"match_distance": 0}, {"max_frames": 0}])
def test_config_rejects_bad_values(kw: dict) -> None:
    with pytest.raises(BadInput):
        ExtractConfig(**kw)
