import numpy as np
import pytest

from facedub.convert.config import ConvertConfig

from facedub.convert.smoothing import OneEuroFilter, interpolate, jitter, one_euro

CFG = ConvertConfig()  # the defaults the pipeline uses


def test_one_euro_reduces_jitter_of_noisy_still_signal():
    rng = np.random.default_rng(0)
    clean = np.zeros((200, 5, 2)) + 100.0
    noisy = clean + rng.normal(0, 1.0, clean.shape)  # 1 px detector noise, face width 100 px
    out = one_euro(noisy, fps=25, min_cutoff=CFG.min_cutoff, beta=CFG.beta, scale=100.0)
    assert jitter(out, 100.0) < jitter(noisy, 100.0) / 4
    assert np.abs(out[50:] - clean[50:]).mean() < np.abs(noisy[50:] - clean[50:]).mean() / 2


def test_one_euro_follows_a_step():
    sig = np.concatenate([np.zeros(50), np.full(50, 50.0)])[:, None]  # half a face width jump
    out = one_euro(sig, fps=25, min_cutoff=CFG.min_cutoff, beta=CFG.beta, scale=100.0)[:, 0]
    assert out[49] == 0.0
    # Within 5 frames (0.2 s) it is more than 90 % there, and it settles.
    assert out[55] > 45.0
    assert abs(out[-1] - 50.0) < 0.5


def test_one_euro_lag_on_smooth_motion_is_small():
    t = np.arange(100) / 25
    sig = (40 * np.sin(2 * np.pi * 0.5 * t))[:, None]  # a head turning back and forth
    out = one_euro(sig, fps=25, min_cutoff=CFG.min_cutoff, beta=CFG.beta, scale=100.0)[:, 0]
    # Peak speed 1.25 face widths/s: lag stays under 4 % of the face width.
    assert np.abs(out - sig[:, 0])[10:].max() < 4.0


def test_filter_reset_and_time_going_backwards():
    f = OneEuroFilter()
    assert f(np.array([1.0]), 0.0)[0] == 1.0
    f(np.array([2.0]), 0.04)
    f.reset()
    assert f(np.array([10.0]), 0.08)[0] == 10.0  # first sample after reset passes through
    assert f(np.array([20.0]), 0.0)[0] == 20.0  # non-increasing time restarts the filter


def test_interpolate_and_jitter():
    parts = interpolate(np.zeros(2), np.full(2, 4.0), 3)
    np.testing.assert_allclose([p[0] for p in parts], [1.0, 2.0, 3.0])
    line = np.arange(10, dtype=float)[:, None, None] * np.ones((1, 1, 2))
    assert jitter(line) == 0.0  # constant speed has no acceleration
    zig = line.copy()
    zig[::2] += 1.0
    assert jitter(zig) > 1.0
    assert np.isnan(jitter(line[:2]))


def test_one_jitter_measure_for_convert_eval_and_tracks():
    """Convert's running figure, the whole-track figure and eval's per-triple figure are one measure."""
    from facedub.convert.smoothing import JitterMeter, second_difference
    from facedub.evaluate.metrics import second_difference_jitter

    rng = np.random.default_rng(3)
    raw = np.cumsum(rng.normal(0, 1.0, (12, 5, 2)), axis=0) + 100
    smooth = one_euro(raw, 25.0, scale=40.0)
    scale = 40.0 + rng.uniform(0, 5, 12)
    meter = JitterMeter()
    for r, s, w in zip(raw, smooth, scale):
        meter.add(r, s, float(w))
    jr, js = meter.result()
    assert jr == pytest.approx(jitter(raw, scale)) and js == pytest.approx(jitter(smooth, scale))
    assert js < jr
    assert second_difference_jitter(raw[0], raw[1], raw[2], scale[1]) == second_difference(raw[0], raw[1], raw[2], scale[1])
    meter.reset()  # a new run: triples never span the reset
    meter.add(raw[0], smooth[0], 1.0)
    meter.add(raw[5], smooth[5], 1.0)
    assert meter.n == 10
