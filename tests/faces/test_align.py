"""Pure alignment geometry: the frame → crop transform and its inverse."""

from __future__ import annotations

import numpy as np
import pytest

from facedub.faces.align import (
    CROP_SIZE,
    TEMPLATE5,
    align_matrix,
    compose,
    face_outline,
    invert_affine,
    points5_from_68,
    rotation_deg,
    scale_of,
    transform_points,
    umeyama,
    warp,
)


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def _face68(rng: np.random.Generator) -> np.ndarray:
    """68 plausible landmarks: template-ish points in a 256 crop plus noise, moved into a frame."""
    lm = rng.uniform(60, 200, size=(68, 2))
    t = TEMPLATE5 * CROP_SIZE
    lm[36:42] = t[0] + rng.normal(0, 3, (6, 2))
    lm[42:48] = t[1] + rng.normal(0, 3, (6, 2))
    lm[30], lm[48], lm[54] = t[2], t[3], t[4]
    return lm


@pytest.mark.parametrize("seed", range(5))
def test_align_then_invert_lands_within_a_pixel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    crop_lm = _face68(rng)
    to_frame = _similarity(rng.uniform(0.3, 3.0), rng.uniform(-40, 40), rng.uniform(-50, 900), rng.uniform(-50, 600))
    frame_lm = transform_points(crop_lm, to_frame) + rng.normal(0, 0.5, (68, 2))  # detector noise
    m = align_matrix(points5_from_68(frame_lm))
    back = transform_points(transform_points(frame_lm, m), invert_affine(m))
    assert np.abs(back - frame_lm).max() < 1.0
    # and the five points land on the template (noise-level residual only)
    p5 = transform_points(points5_from_68(frame_lm), m)
    assert np.linalg.norm(p5 - TEMPLATE5 * CROP_SIZE, axis=1).max() < 3.0
    # the fitted matrix undoes the made-up one
    assert scale_of(m) == pytest.approx(1.0 / scale_of(to_frame), rel=0.02)
    assert rotation_deg(compose(m, to_frame)) == pytest.approx(0.0, abs=1.0)


def test_umeyama_recovers_an_exact_similarity() -> None:
    rng = np.random.default_rng(1)
    src = rng.normal(size=(10, 2))
    truth = _similarity(1.7, 25.0, 3.0, -2.0)
    got = umeyama(src, transform_points(src, truth))[:2]
    assert np.allclose(got, truth, atol=1e-9)


def test_warp_moves_pixels_where_the_matrix_says() -> None:
    img = np.zeros((300, 400, 3), np.uint8)
    img[148:153, 248:253] = 255  # a dot centred at (250, 150)
    m = _similarity(0.8, 30.0, 20.0, 10.0)
    out = warp(img, m, 256, border="constant")
    ys, xs = np.nonzero(out[..., 0] > 100)
    centre = np.array([xs.mean(), ys.mean()])
    assert np.linalg.norm(centre - transform_points(np.array([[250.0, 150.0]]), m)[0]) < 1.0


def test_points5_from_68_layout() -> None:
    lm = np.zeros((68, 2))
    lm[36:42] = [10, 20]
    lm[42:48] = [30, 20]
    lm[30] = [20, 30]
    lm[48] = [12, 40]
    lm[54] = [28, 40]
    assert np.allclose(points5_from_68(lm), [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])
    with pytest.raises(ValueError):
        points5_from_68(np.zeros((5, 2)))


def test_face_outline_lifts_the_brows_along_the_face_axis() -> None:
    """Upright face: the ten extra points sit 0.2 × chin-to-brow above the brows; a face turned
    by 90° gets them turned the same way; forehead=0 is the landmarks alone."""
    lm = np.zeros((68, 2))
    lm[:, 0] = np.linspace(80, 176, 68)
    lm[:, 1] = 150.0
    lm[17:27] = np.stack([np.linspace(100, 156, 10), np.full(10, 90.0)], 1)  # brows, centred on x = 128
    lm[27] = (128, 100)  # nose bridge
    lm[8] = (128, 230)  # chin
    out = face_outline(lm, 0.2)
    assert out.shape == (78, 2) and np.array_equal(out[:68], lm)
    np.testing.assert_allclose(out[68:, 1], 90.0 - 0.2 * 140.0, atol=1e-6)
    np.testing.assert_allclose(out[68:, 0], lm[17:27, 0], atol=1e-6)
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])  # 90° turn about the origin
    turned = face_outline(lm @ rot.T, 0.2)
    np.testing.assert_allclose(turned, out @ rot.T, atol=1e-6)
    assert np.array_equal(face_outline(lm, 0.0), lm)


@pytest.mark.parametrize("coverage,size", [(0.875, 80), (0.6875, 64), (0.8, 128)])
def test_crop_to_model_matrix_is_the_geometry_of_crop_to_model(coverage, size):
    """A bright spot in the crop lands where the matrix says after ``crop_to_model`` (training
    maps its landmarks with this matrix; convert pastes with it)."""
    from facedub.faces.align import crop_to_model, crop_to_model_matrix, transform_points

    yy, xx = np.mgrid[0:256, 0:256]
    for p in ((101.3, 97.8), (150.6, 170.2)):
        crop = np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * 6.0**2))
        img = crop_to_model(np.repeat(crop[..., None], 3, -1).astype(np.float32), coverage, size)[..., 0]
        my, mx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
        got = np.array([(img * mx).sum() / img.sum(), (img * my).sum() / img.sum()])
        want = transform_points(np.array([p]), crop_to_model_matrix(coverage, size))[0]
        assert np.abs(got - want).max() < 0.1, (got, want)
