import numpy as np
import pytest

from facedub.convert import color


def _img(rng, mean, spread, shape=(40, 50)):
    return np.clip(rng.normal(mean, spread, shape + (3,)), 0, 255).astype(np.uint8)


def test_reinhard_matches_reference_mean_and_std_inside_mask():
    rng = np.random.default_rng(0)
    src = _img(rng, (90, 120, 160), 12)
    ref = _img(rng, (180, 140, 110), 30)
    mask = np.zeros(src.shape[:2], np.float32)
    mask[5:35, 10:40] = 1.0
    out = color.reinhard(src, ref, mask)
    o, r, s = color.lab_stats(out, mask), color.lab_stats(ref, mask), color.lab_stats(src, mask)
    # Before: far apart. After: means within 1.5 L*a*b* units, stds within 10 %.
    assert np.abs(s.mean - r.mean).max() > 10
    np.testing.assert_allclose(o.mean, r.mean, atol=1.5)
    np.testing.assert_allclose(o.std, r.std, rtol=0.1, atol=0.5)


def test_reinhard_ignores_pixels_outside_the_mask():
    rng = np.random.default_rng(1)
    src = _img(rng, (100, 100, 100), 10)
    ref = _img(rng, (100, 100, 100), 10)
    mask = np.zeros(src.shape[:2], np.float32)
    mask[:, :25] = 1.0
    ref_wild = ref.copy()
    ref_wild[:, 25:] = 255  # outside the mask: must not change the result
    np.testing.assert_array_equal(color.reinhard(src, ref, mask), color.reinhard(src, ref_wild, mask))


def test_reinhard_with_empty_mask_returns_source():
    rng = np.random.default_rng(2)
    src, ref = _img(rng, (50, 60, 70), 5), _img(rng, (200, 60, 70), 5)
    out = color.reinhard(src, ref, np.zeros(src.shape[:2], np.float32))
    np.testing.assert_array_equal(out, src)


def test_histogram_match_matches_channel_distributions():
    rng = np.random.default_rng(3)
    src = _img(rng, (60, 90, 120), 15)
    ref = _img(rng, (170, 120, 80), 35)
    out = color.histogram_match(src, ref, None)
    for c in range(3):
        qs = np.linspace(5, 95, 10)
        np.testing.assert_allclose(np.percentile(out[..., c], qs), np.percentile(ref[..., c], qs), atol=4)
    # Monotone per channel: order of source values preserved.
    flat_s, flat_o = src[..., 0].ravel(), out[..., 0].ravel()
    order = np.argsort(flat_s, kind="stable")
    assert np.all(np.diff(flat_o[order].astype(int)) >= 0)


@pytest.mark.parametrize("mode", ["reinhard", "hist", "none"])
def test_transfer_color_modes_keep_shape(mode):
    rng = np.random.default_rng(4)
    src, ref = _img(rng, (60, 90, 120), 15), _img(rng, (170, 120, 80), 35)
    out = color.transfer_color(src, ref, np.ones(src.shape[:2], np.float32), mode)
    assert out.shape == src.shape and out.dtype == np.uint8
    if mode == "none":
        np.testing.assert_array_equal(out, src)
    else:
        assert abs(float(out.mean()) - float(ref.mean())) < abs(float(src.mean()) - float(ref.mean())) / 4


def test_blend_stats_moving_average():
    a = color.LabStats(np.zeros(3), np.ones(3))
    b = color.LabStats(np.full(3, 10.0), np.full(3, 3.0))
    m = color.blend_stats(a, b, 0.75)
    np.testing.assert_allclose(m.mean, 2.5)
    np.testing.assert_allclose(m.std, 1.5)
    assert color.blend_stats(None, b, 0.75) is b
