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
