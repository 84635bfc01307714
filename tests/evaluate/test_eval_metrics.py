"""Pure metric functions on hand-made inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facedub.evaluate import metrics as M
from facedub.evaluate.pose import TEMPLATE3D


def face68(seed: int = 0) -> np.ndarray:
    """A plausible 68-point face: the pose template's points plus the rest spread around them."""
    rng = np.random.default_rng(seed)
    lm = np.zeros((68, 2))
    for i, (x, y, _z) in TEMPLATE3D.items():
        lm[i] = (x, y)
    rest = [i for i in range(68) if i not in TEMPLATE3D]
    lm[rest] = rng.uniform([-60, -30], [60, 120], size=(len(rest), 2))
    return lm * 2.0 + np.array([256.0, 200.0])


def similarity(lm: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = math.radians(angle_deg)
    r = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return lm @ r.T + np.array(shift)


def test_inter_ocular_is_outer_eye_corner_distance():
    lm = face68()
    assert M.inter_ocular(lm) == pytest.approx(2.0 * 88.0)


def test_expression_error_zero_for_same_face_under_similarity():
    lm = face68()
    moved = similarity(lm, 12.0, 1.3, (40.0, -25.0))
    assert M.expression_error(moved, lm) == pytest.approx(0.0, abs=1e-9)


def test_expression_error_sees_an_open_mouth_but_not_a_moved_jaw_line():
    lm = face68()
    mouth = lm.copy()
    mouth[57] += (0.0, 20.0)  # lower lip drops 20 px
    mouth[66] += (0.0, 20.0)
    err = M.expression_error(mouth, lm)
    # 2 of 42 expression points moved 20 px; IOD 176 px; rigid points untouched → exact
    assert err == pytest.approx(2 * 20.0 / 42 / 176.0, rel=1e-6)
    jaw = lm.copy()
    jaw[0:17] += 15.0
    assert M.expression_error(jaw, lm) == pytest.approx(0.0, abs=1e-9)


def test_expression_error_rejects_bad_shapes():
    with pytest.raises(ValueError):
        M.expression_error(np.zeros((5, 2)), face68())


def test_expression_dynamics_error_is_identity_neutral():
    """A different face build with the same movements scores 0; other movements do not."""
    rng = np.random.default_rng(1)
    base_t, base_o = face68(1), face68(2)  # two "people"
    base_o[list(M.RIGID_POINTS)] = base_t[list(M.RIGID_POINTS)]  # same rigid frame, other features
    ref = M.reference_rigid(base_t)
    moves = rng.normal(0, 3.0, size=(30, 68, 2))
    moves[:, list(M.RIGID_POINTS)] = 0.0
    tgt = np.stack([M.canonical_shape(similarity(base_t + m, 5.0 * k % 7, 1.0 + 0.01 * k, (k, -k)), ref) for k, m in enumerate(moves)])
    out_same = np.stack([M.canonical_shape(base_o + m, ref) for m in moves])
    assert M.expression_dynamics_error(out_same, tgt).max() < 1e-9
    # static error does see the different build
    assert M.expression_error(base_o, base_t) > 0.05
    shuffled = out_same[rng.permutation(30)]
    frozen = np.repeat(out_same[:1] * 0 + M.canonical_shape(base_o, ref)[None], 30, axis=0)
    e_shuf = M.expression_dynamics_error(shuffled, tgt).mean()
    e_frozen = M.expression_dynamics_error(frozen, tgt).mean()
    motion = M.expression_motion(tgt).mean()
    assert e_frozen == pytest.approx(motion, rel=1e-6)
    assert e_shuf > 1.2 * motion


def test_second_difference_jitter_ignores_constant_velocity():
    lm = face68()
    assert M.second_difference_jitter(lm, lm + 5, lm + 10) == pytest.approx(0.0)
    assert M.second_difference_jitter(lm, lm + (3.0, 4.0), lm, scale=5.0) == pytest.approx(2.0)  # |-2·(3,4)| / 5
    with pytest.raises(ValueError):
        M.second_difference_jitter(lm, lm, lm[:10])


def test_masked_second_difference_only_counts_inside_mask():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:5] = 100  # flicker in the top half only
    mask = np.zeros((10, 10), bool)
    mask[5:] = True
    assert M.masked_second_difference(a, b, a, mask) == 0.0
    mask[:] = True
    assert M.masked_second_difference(a, b, a, mask) == pytest.approx(100.0)  # |0 - 200 + 0| over half the pixels
    assert math.isnan(M.masked_second_difference(a, b, a, np.zeros((10, 10), bool)))


def test_psnr_values_cap_and_mask():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert M.psnr(a, a) == M.PSNR_CAP
    b = a.copy()
    b[0, 0, 0] = 110  # MSE = 100 / 192
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 192)))
    mask = np.ones((8, 8), bool)
    mask[0, 0] = False
    assert M.psnr(a, b, mask) == M.PSNR_CAP
    with pytest.raises(ValueError):
        M.psnr(a, a[:4])


def test_identity_helpers():
    a, b = np.zeros(128), np.zeros(128)
    b[0] = 0.5
    assert M.descriptor_distance(a, b) == pytest.approx(0.5)
    assert M.mean_descriptor([a, b])[0] == pytest.approx(0.25)
    with pytest.raises(ValueError):
        M.mean_descriptor([])
    assert M.reads_as_source(0.3, 0.5)
    assert not M.reads_as_source(0.5, 0.3)  # closer to the target
    assert not M.reads_as_source(0.65, 0.9)  # not within the same-person distance
    assert M.SAME_PERSON_DISTANCE == 0.6


def test_angles_and_summaries():
    assert M.angle_difference_deg(170.0, -170.0) == pytest.approx(20.0)
    r = np.eye(3)
    assert M.rotation_angle_deg(r, r) == pytest.approx(0.0, abs=1e-6)
    s = M.summarise([1.0, None, float("nan"), 3.0])
    assert s["mean"] == 2.0 and s["count"] == 2 and s["min"] == 1.0 and s["max"] == 3.0
    assert M.summarise([])["mean"] is None
    assert math.isnan(M.ratio(1.0, 0.0))
