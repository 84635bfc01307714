"""Watermark: payload coding, embedding cost, survival of each attack, no false positives."""

import time

import numpy as np
import pytest
from tests.safety.conftest import crop10, downscale, jpeg, read_segment, reencode, textured_frames

from facedub.safety import watermark as wm

OID = "0123456789ab"


def test_payload_roundtrip_and_error_correction():
    coded = wm.encode_payload(OID)
    assert len(coded) == wm.CODED_BITS == 172
    soft = 2.0 * coded - 1.0
    rng = np.random.default_rng(1)
    flip = rng.choice(len(soft), 12, replace=False)  # 7 % hard errors
    soft[flip] *= -1
    ok, oid, agree, _ = wm._decode_soft(soft + rng.normal(0, 0.3, len(soft)))
    assert ok and oid == OID
    assert agree >= len(soft) - 20


def test_bad_output_id():
    for bad in ("xyz", "0123", "0123456789abc"):
        with pytest.raises(ValueError):
            wm.encode_payload(bad)


def test_embed_cost_512_under_5ms():
    f = textured_frames(1, (512, 512))[0]
    w = wm.Watermarker(OID)
    w.embed(f)  # builds the cached pattern
    t = time.perf_counter()
    for _ in range(50):
        w.embed(f)
    ms = (time.perf_counter() - t) / 50 * 1000
    assert ms < 5.0, ms


def test_embed_is_small_and_bounded():
    f = textured_frames(1, (256, 256))[0]
    m = wm.embed(f, OID)
    d = m.astype(int) - f
    assert np.abs(d).max() <= wm.SMALL_STRENGTH
    psnr = 10 * np.log10(255**2 / np.mean(d.astype(float) ** 2))
    assert psnr > 33


@pytest.fixture(scope="module")
def marked_clip():
    """A marked 256² textured clip as convert writes it (H.264 CRF 18)."""
    frames = textured_frames(24, (256, 256), seed=3)
    w = wm.Watermarker(OID)
    return reencode([w.embed(f) for f in frames], 18)


def _ok(r):
    assert r.found and r.output_id == OID, r


def test_survives_h264_crf28(marked_clip):
    _ok(wm.decode(reencode(marked_clip, 28)))


def test_survives_downscale_half(marked_clip):
    r = wm.decode([downscale(f) for f in marked_clip])
    _ok(r)
    assert abs(r.scale - 0.5) < 0.02


def test_survives_crop_10_percent(marked_clip):
    _ok(wm.decode([crop10(f) for f in marked_clip]))


def test_single_frame_jpeg85(marked_clip):
    _ok(wm.decode(jpeg(marked_clip[len(marked_clip) // 2])))


def test_non_square_and_odd_sizes():
    frames = textured_frames(6, (334, 210), seed=5)
    w = wm.Watermarker("fedcba987654")
    r = wm.decode(reencode([w.embed(f) for f in frames], 18))
    assert r.found and r.output_id == "fedcba987654"


def test_unmarked_generated_frames_are_not_detected():
    rng = np.random.default_rng(7)
    hits = 0
    frames = textured_frames(40, (256, 192), seed=11)
    for i, f in enumerate(frames):
        noise = rng.normal(0, 4, f.shape)
        g = np.clip(f + noise, 0, 255).astype(np.uint8)
        hits += wm.decode(g).found
    assert hits == 0


@pytest.mark.shared
@pytest.mark.slow
def test_real_clip_segment_survives_each_attack(shared_data):
    frames = read_segment(shared_data / "synthetic" / "aiface1" / "speech_256.mp4", 40)
    w = wm.Watermarker(OID)
    out = reencode([w.embed(f) for f in frames], 18)
    assert not wm.decode(reencode(frames, 18)).found  # the unmarked original
    _ok(wm.decode(reencode(out, 28)))
    _ok(wm.decode([downscale(f) for f in out]))
    _ok(wm.decode([crop10(f) for f in out]))
    _ok(wm.decode(jpeg(out[20])))


@pytest.mark.shared
@pytest.mark.slow
def test_no_false_positive_on_shared_media(shared_data):
    from facedub.safety.verify import verify_file

    files = sorted(p for p in shared_data.rglob("*") if p.suffix.lower() in {".mp4", ".mpg", ".png"})
    for p in files:
        r = verify_file(p, max_frames=16)
        assert not r.watermark.found and not r.marked, p
