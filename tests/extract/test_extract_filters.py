"""Per-face filters and the config's checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedub.errors import BadInput
from facedub.extract.config import ExtractConfig
from facedub.extract.filters import BLUR_FLOOR, blur_limit, reject_reason, sharpness, sharpness_at


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


# -- the relative blur filter -------------------------------------------------------------
def _smooth_face_like(seed: int = 0) -> np.ndarray:
    """A 256 px crop with detail down to a few pixels (like a sharp face at full size)."""
    import cv2

    return cv2.GaussianBlur(_texture(seed), (0, 0), 1.2)


def _as_if_from(crop: np.ndarray, side: int) -> np.ndarray:
    """The crop as alignment makes it from a face ``side`` px across: shrunk, then enlarged."""
    import cv2

    small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, crop.shape[:2][::-1], interpolation=cv2.INTER_LINEAR)


def test_sharpness_at_training_size_does_not_punish_low_resolution() -> None:
    import cv2

    full = _smooth_face_like()
    low = _as_if_from(full, 112)  # the same picture from low-resolution footage
    assert sharpness_at(full) == pytest.approx(sharpness(cv2.resize(full, (64, 64), interpolation=cv2.INTER_AREA)))
    abs_kept = sharpness(low) / sharpness(full)
    rel_kept = sharpness_at(low) / sharpness_at(full)
    assert abs_kept < 0.3 and rel_kept > 1.8 * abs_kept  # (real faces: see the shared test below)
    blurred = cv2.GaussianBlur(low, (0, 0), 2.0 * 256 / 112)  # σ = 2 px of the 112 px face
    assert sharpness_at(blurred) < 0.1 * sharpness_at(low)


@pytest.mark.shared
def test_sharpness_at_training_size_is_about_the_same_for_a_face_at_any_size(shared_data: Path) -> None:
    import cv2

    from facedub.extract.pipeline import _warp_crop
    from facedub.faces.align import align_matrix
    from facedub.faces.detect import FaceDetector
    from facedub.media.reader import open_media

    frame = next(iter(open_media(shared_data / "synthetic" / "aiface1" / "speech_512.mp4"))).rgb
    abs_s, rel_s = [], []
    with FaceDetector(video_mode=False) as det:
        for k in (1.0, 0.5, 0.3):  # face about 250, 125 and 75 px across
            img = frame if k == 1.0 else cv2.resize(frame, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
            crop = _warp_crop(img, align_matrix(det.detect(img)[0].points5))
            abs_s.append(sharpness(crop))
            rel_s.append(sharpness_at(crop))
    assert abs_s[2] < 0.3 * abs_s[0]  # the absolute score falls with the face's size ...
    assert min(rel_s) > 0.5 * max(rel_s), rel_s  # ... the one at 64 px much less


def test_blur_limit_keeps_an_even_faceset_and_drops_the_outlier() -> None:
    cfg = ExtractConfig()
    rng = np.random.default_rng(0)
    even = list(np.exp(rng.normal(np.log(500), 0.3, 30)))
    lim = blur_limit(even, cfg)
    assert lim.faces == 30 and lim.limit < min(even)  # nobody goes from an even set
    with_outlier = even + [500 / 12]
    lim2 = blur_limit(with_outlier, cfg)
    assert min(even) > lim2.limit > 500 / 12
    assert "median" in lim2.describe()
    # A low-resolution faceset that is uniformly soft keeps its faces (only the floor is absolute).
    soft = [x / 4 for x in even]
    assert blur_limit(soft, cfg).limit < min(soft)
    # Too few faces to compare: only the floor applies.
    few = blur_limit([500.0, 30.0], cfg)
    assert few.limit == BLUR_FLOOR and "fewer than" in few.rule
    assert blur_limit([], cfg).faces == 0


def test_blur_modes_in_config_and_reject_reason() -> None:
    rel = ExtractConfig()
    assert rel.blur_threshold is None  # relative by default
    assert reject_reason(80, 0.9, 0.5, rel) is None  # decided over the faceset, not per face
    with pytest.raises(BadInput):
        ExtractConfig(blur_mads=0)
    with pytest.raises(BadInput):
        ExtractConfig(blur_ratio=0.5)


def _grid_face_images(grid: Path, folder: Path, side: int = 112, n: int = 19) -> list[Path]:
    """``n`` face images ``side`` px square cut from a GRID clip (one speaker), as JPEGs."""
    import cv2
    from PIL import Image

    from facedub.faces.detect import FaceDetector
    from facedub.media.reader import open_media

    folder.mkdir()
    out = []
    with FaceDetector(video_mode=False) as det:
        for f in open_media(grid / "id2_vcd_swwp2s.mpg").frames(every=4, limit=n):
            x0, y0, x1, y1 = det.detect(f.rgb)[0].bbox
            cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, 1.5 * max(x1 - x0, y1 - y0)
            crop = f.rgb[int(cy - s / 2) : int(cy + s / 2), int(cx - s / 2) : int(cx + s / 2)]
            p = folder / f"face{len(out):02d}.jpg"
            Image.fromarray(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)).save(p, quality=85)
            out.append(p)
    return out


@pytest.mark.shared
def test_low_resolution_face_images_are_kept_and_a_blurred_one_dropped(shared_data: Path, tmp_path: Path) -> None:
    """The issue's case: a folder of 112 px face images. The absolute filter (15) dropped about
    half; the relative one keeps every reasonable face and drops only the heavily blurred one."""
    import cv2
    from PIL import Image

    from facedub.extract import extract_faceset
    from facedub.faceset import load_faceset

    images = _grid_face_images(shared_data / "grid", tmp_path / "imgs")
    blurred = images[5]
    Image.fromarray(cv2.GaussianBlur(np.asarray(Image.open(blurred)), (0, 0), 4.0)).save(blurred, quality=85)
    s = extract_faceset([tmp_path / "imgs"], tmp_path / "fs", ExtractConfig())
    assert s.faces_found == 19
    assert s.faces_kept == 18 and s.rejected == {"blurry": 1}
    assert any("1 blurry face(s) of 19" in n and "median" in n for n in s.notes)
    assert "blurry 1" in "\n".join(s.lines())
    fs = load_faceset(tmp_path / "fs")
    assert all("_f0000000_" in f.file for f in fs.faces)
    kept_sources = {fs.sources[f.source].path for f in fs.faces}
    assert str(blurred.resolve()) not in kept_sources
    # The old absolute limit would have thrown away several of these good faces.
    assert sum(1 for f in fs.faces if f.sharpness < 15.0) >= 3
    # ... and it is still there for those who want it.
    s_abs = extract_faceset([tmp_path / "imgs"], tmp_path / "fs_abs", ExtractConfig(blur_threshold=15.0))
    assert s_abs.rejected.get("blurry", 0) >= 4
