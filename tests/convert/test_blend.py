import numpy as np
import pytest

from facedub.convert import blend as B
from facedub.faces.align import invert_affine


def _imgs(seed=0, shape=(48, 64, 3)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("mode", ["alpha", "poisson"])
def test_zero_mask_is_identity(mode):
    fg, bg = _imgs()
    out = B.blend(fg, bg, np.zeros(bg.shape[:2], np.float32), mode)
    np.testing.assert_array_equal(out, bg)


def test_alpha_full_mask_gives_foreground_and_half_mixes():
    fg, bg = _imgs(1)
    np.testing.assert_array_equal(B.alpha_blend(fg, bg, np.ones(bg.shape[:2], np.float32)), fg)
    half = B.alpha_blend(fg, bg, np.full(bg.shape[:2], 0.5, np.float32)).astype(int)
    assert np.abs(half - (fg.astype(int) + bg.astype(int)) / 2).max() <= 1


def test_poisson_changes_only_masked_pixels_and_matches_background_at_edge():
    bg = np.full((60, 80, 3), 100, np.uint8)
    fg = np.full((60, 80, 3), 200, np.uint8)
    fg[25:35, 35:45] = 230  # a feature inside
    mask = np.zeros((60, 80), np.float32)
    mask[15:45, 20:60] = 1.0
    out = B.poisson_blend(fg, bg, mask)
    np.testing.assert_array_equal(out[mask == 0], bg[mask == 0])
    # Gradient-domain: the flat offset of 100 disappears, the feature's contrast stays.
    assert abs(int(out[17, 22, 0]) - 100) < 15
    assert int(out[30, 40, 0]) - int(out[18, 40, 0]) > 15


def test_paste_region_roundtrip():
    # A similarity transform frame → 32 px model square; warping a constant face back covers
    # exactly the square's footprint in the frame.
    m = np.array([[0.5, 0.1, -10.0], [-0.1, 0.5, -5.0]])
    region = B.square_region(m, 32, (120, 160))
    assert region is not None and 0 <= region.x0 < region.x1 <= 160 and 0 <= region.y0 < region.y1 <= 120
    m_roi = B.region_matrix(m, region)
    ones = B.warp_back(np.ones((32, 32), np.float32), m_roi, region)
    # Footprint area ≈ 32² / det(m).
    expected = 32 * 32 / abs(np.linalg.det(m[:, :2]))
    assert abs(ones.sum() - expected) / expected < 0.05
    # Centre of the model square lands at the inverse-mapped centre.
    c = invert_affine(m) @ np.array([15.5, 15.5, 1.0])
    assert ones[int(round(c[1])) - region.y0, int(round(c[0])) - region.x0] == pytest.approx(1.0)


def test_square_region_outside_frame_is_none():
    m = np.array([[1.0, 0.0, 500.0], [0.0, 1.0, 500.0]])  # model square maps far off-frame
    assert B.square_region(m, 32, (100, 100)) is None


def test_sharpen_steepens_edges_and_keeps_flat_areas():
    import cv2

    step = np.zeros((32, 32, 3), np.uint8)
    step[:, 16:] = 200
    soft = cv2.GaussianBlur(step, (0, 0), 1.5)
    assert B.sharpen(soft, 0.0) is soft
    out = B.sharpen(soft, 1.0)
    assert out.dtype == np.uint8 and out.shape == soft.shape
    grad = lambda im: np.abs(np.diff(im[16, :, 0].astype(int))).max()  # noqa: E731
    assert grad(out) > 1.15 * grad(soft)  # 64 against 54 grey levels a pixel
    flat = np.full((16, 16, 3), 90, np.uint8)
    np.testing.assert_array_equal(B.sharpen(flat, 2.0), flat)


def test_sharpen_amount_is_validated():
    from facedub.convert import ConvertConfig
    from facedub.errors import BadInput

    with pytest.raises(BadInput, match="sharpen"):
        ConvertConfig(sharpen=-0.5)
