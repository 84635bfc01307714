import numpy as np

from facedub.convert import mask as M


def _square(n=64, lo=16, hi=48):
    m = np.zeros((n, n), np.float32)
    m[lo:hi, lo:hi] = 1.0
    return m


def test_hull_mask_fills_convex_hull_of_points():
    pts = np.array([[10, 10], [50, 10], [50, 40], [10, 40], [30, 25]], float)  # inner point ignored
    m = M.hull_mask(pts, (60, 64))
    assert m.shape == (60, 64)
    assert m[25, 30] == 1.0 and m[5, 5] == 0.0 and m[45, 30] == 0.0
    # Area of the 40×30 rectangle; OpenCV also fills the boundary pixels (≈ half a pixel each side).
    assert 40 * 30 <= m.sum() <= 42 * 32


def test_erode_shrinks_and_stays_inside():
    m = _square()
    e = M.erode(m, 4)
    assert e.sum() < m.sum()
    assert np.all(e <= m)
    assert e[20, 32] == 1.0 and e[17, 32] == 0.0  # 4 px in from the top edge at 16
    d = M.erode(m, -3)  # negative grows
    assert d.sum() > m.sum() and np.all(d >= m)


def test_erode_shrinks_away_from_image_border():
    m = np.ones((20, 20), np.float32)
    e = M.erode(m, 2)
    assert e[0].max() == 0.0 and e[10, 10] == 1.0


def test_feather_softens_edge():
    m = _square()
    f = M.feather(m, 8)
    soft = (f > 0.01) & (f < 0.99)
    assert soft.sum() > 4 * 32 * 3  # a band several pixels wide all round
    assert (((m > 0) & (m < 1)).sum()) == 0
    # Gentler steps than the hard edge.
    assert np.abs(np.diff(f, axis=1)).max() < 0.5
    assert f[32, 32] > 0.99 and f[0, 0] == 0.0


def test_face_mask_keeps_soft_band_inside_hull_and_zero_outside():
    square = np.ones((64, 64), np.float32)
    hull = _square()
    m = M.face_mask(square=square, hull=hull, erode_px=2, feather_px=8)
    assert np.all(m[hull == 0] == 0.0)
    assert m[32, 32] > 0.99
    # The ramp lies inside: at the hull edge the mask is already low.
    assert m[16, 32] < 0.2


def test_face_mask_intersects_learned_mask():
    square = np.ones((64, 64), np.float32)
    hull = _square()
    learned = np.zeros((64, 64), np.float32)
    learned[:, :32] = 1.0
    m = M.face_mask(square=square, hull=hull, learned=learned, erode_px=0, feather_px=0)
    assert m[32, 20] == 1.0 and m[32, 40] == 0.0


def _face_geometry(side=340, size=64, angle=12.0):
    """An ROI with a rotated model square and an ellipse-like hull inside it, like one face of a 512² frame."""
    import cv2

    c = side / 2
    rot = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
    s = side * 0.9 / size
    model_to_roi = np.array([[s, 0, c - s * size / 2], [0, s, c - s * size / 2]]) @ np.vstack([rot, [0, 0, 1]])
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    hull = np.stack([c + 0.33 * side * np.cos(t), c + 0.4 * side * np.sin(t) + 8], 1)
    return (side, side), hull, model_to_roi


def test_square_mask_matches_warped_ones():
    import cv2

    shape, _, m = _face_geometry()
    warped = cv2.warpAffine(np.ones((64, 64), np.float32), m, shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    sq = M.square_mask(m, 64, shape)
    assert np.abs(sq - warped).mean() < 0.01  # edges differ by a fraction of a pixel (polygon vs. bilinear)
    assert abs((sq > 0.5).sum() / (warped > 0.5).sum() - 1.0) < 0.01
    assert sq[shape[0] // 2, shape[1] // 2] == 1.0 and sq[0, 0] == 0.0


def test_paste_mask_matches_full_size_mask():
    """The reduced-resolution mask is the full-size one with its ramp moved a pixel or two at most
    (a 22 px feather, as at a 512² frame's face), and exact where it must be."""
    import cv2

    shape, hull, m = _face_geometry()
    full_square = cv2.warpAffine(np.ones((64, 64), np.float32), m, shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    full_hull = M.hull_mask(hull, shape)
    learned = np.ones((64, 64), np.float32)
    learned[:, 40:] = 0.0  # a learned mask that cuts the face: the intersection must follow it
    full_learned = cv2.warpAffine(learned, m, shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    for lm in (None, learned):
        ref = M.face_mask(square=full_square, hull=full_hull, learned=None if lm is None else full_learned, erode_px=7, feather_px=22)
        got = M.paste_mask(shape, hull, m, 64, lm, erode_px=7, feather_px=22)
        assert got.shape == shape and got.dtype == np.float32
        assert np.abs(got - ref).max() < 0.25 and np.abs(got - ref).mean() < 0.015
        assert abs((got > 0.5).sum() / (ref > 0.5).sum() - 1.0) < 0.05
        assert np.all(got[full_hull == 0] == 0.0)  # never outside the hull
        assert got[shape[0] // 2, shape[1] // 2] > 0.99
    # A narrow feather is computed at full size: the same mask exactly.
    ref = M.face_mask(square=M.square_mask(m, 64, shape), hull=full_hull, erode_px=2, feather_px=4)
    np.testing.assert_array_equal(M.paste_mask(shape, hull, m, 64, None, erode_px=2, feather_px=4), ref)
