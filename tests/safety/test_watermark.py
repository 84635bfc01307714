"""Watermark: payload coding, embedding cost, survival of each attack, no false positives."""


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


def test_embed_is_small_and_bounded():
    f = textured_frames(1, (256, 256))[0]
    m = wm.embed(f, OID)
    d = m.astype(int) - f
    assert np.abs(d).max() <= wm.SMALL_STRENGTH
    psnr = 10 * np.log10(255**2 / np.mean(d.astype(float) ** 2))
    assert psnr > 33


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / max(np.mean((a.astype(float) - b.astype(float)) ** 2), 1e-12)))


def _flat_plate(size: tuple[int, int] = (512, 512), seed: int = 0) -> np.ndarray:
    """A grey wall: a gentle gradient with sensor noise of about one level."""
    w, h = size
    rng = np.random.default_rng(seed)
    base = 110 + 30 * np.linspace(0, 1, w)[None, :] + 10 * np.linspace(0, 1, h)[:, None]
    return np.clip(base[:, :, None] + rng.normal(0, 1.0, (h, w, 3)), 0, 255).astype(np.uint8)


def _circle(cx: float, cy: float, r: float, n: int = 32) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def test_flat_area_distortion_is_low():
    flat = _flat_plate()
    shaped = wm.embed(flat, OID)
    uniform = wm.embed(flat, OID, strength=wm.strength_for(512, 512))  # the mark before the shaping
    d = shaped.astype(int) - flat
    assert np.abs(d).max() <= wm.LARGE_AMPLITUDES.flat  # one grey level on a flat wall
    assert _psnr(shaped, flat) >= 48.0 > _psnr(uniform, flat) + 8
    # Detail hides a stronger mark: the same frame with a textured half (foliage-like grain).
    import cv2

    grain = cv2.GaussianBlur(np.random.default_rng(2).normal(0, 60, (512, 256)).astype(np.float32), (0, 0), 1.0)
    mixed = flat.copy()
    mixed[:, 256:] = np.clip(mixed[:, 256:].astype(np.float32) + grain[:, :, None], 0, 255).astype(np.uint8)
    d = np.abs(wm.embed(mixed, OID).astype(int) - mixed)
    assert d[:, 260:].mean() > 1.5 * d[:, :250].mean()


def test_face_gets_the_energy_and_the_plate_decides_outside_it():
    plate = _flat_plate(seed=1)
    face = _circle(256, 256, 90)
    pasted = plate.copy()
    yy, xx = np.mgrid[0:512, 0:512]
    inside = (xx - 256) ** 2 + (yy - 256) ** 2 < 90**2
    pasted[inside] = 255 - pasted[inside]  # the swap changed the face
    w = wm.Watermarker(OID)
    out = w.embed(pasted, face=face, plate=plate)
    d = np.abs(out.astype(int) - pasted)
    core = (xx - 256) ** 2 + (yy - 256) ** 2 < 70**2
    assert d[core].mean() >= 0.9 * wm.LARGE_AMPLITUDES.face
    # Outside the face hull the mark is the plate's own, as if nothing had been pasted.
    np.testing.assert_array_equal(out[~inside], w.embed(plate)[~inside])
    # A face the paste left as it was (an empty mask, an occluder kept in front) gets no more.
    np.testing.assert_array_equal(w.embed(plate, face=face, plate=plate), w.embed(plate))


def test_a_big_face_carries_the_mark_and_leaves_a_flat_plate_untouched():
    """A large frame whose face covers FACE_TILES tiles or more: nothing on the flat wall around
    it, the face's full share inside; a smaller face still leaves the plate its ±1."""
    plate = _flat_plate(seed=2)
    yy, xx = np.mgrid[0:512, 0:512]
    w = wm.Watermarker(OID)
    for r, plate_marked in ((150, False), (90, True)):
        inside = (xx - 256) ** 2 + (yy - 256) ** 2 < r**2
        pasted = plate.copy()
        pasted[inside] = 255 - pasted[inside]
        out = w.embed(pasted, face=_circle(256, 256, r), plate=plate)
        d = np.abs(out.astype(int) - pasted)
        outside = (xx - 256) ** 2 + (yy - 256) ** 2 > (r + 8) ** 2
        assert d[outside].max() == (1 if plate_marked else 0), r
        core = (xx - 256) ** 2 + (yy - 256) ** 2 < (r - 20) ** 2
        assert d[core].mean() >= 0.9 * wm.LARGE_AMPLITUDES.face
    # Detail beside a big face keeps a trace: ±1, never the plate's own ±2.
    import cv2

    grain = cv2.GaussianBlur(np.random.default_rng(3).normal(0, 60, (512, 512)).astype(np.float32), (0, 0), 1.0)
    busy = np.clip(plate.astype(np.float32) + grain[:, :, None], 0, 255).astype(np.uint8)
    inside = (xx - 256) ** 2 + (yy - 256) ** 2 < 150**2
    pasted = busy.copy()
    pasted[inside] = 255 - pasted[inside]
    d = np.abs(w.embed(pasted, face=_circle(256, 256, 150), plate=busy).astype(int) - pasted)
    far = (xx - 256) ** 2 + (yy - 256) ** 2 > 160**2
    assert d[far].max() == wm.LARGE_AMPLITUDES.beside_face[1] < wm.LARGE_AMPLITUDES.textured  # type: ignore[index]
    assert np.abs(w.embed(busy).astype(int) - busy)[far].max() == wm.LARGE_AMPLITUDES.textured


def test_a_big_face_alone_reads_after_crf28():
    """The plate around a big face carries nothing: the face alone must survive convert's
    default CRF and then a CRF-28 re-encode, voted over a short clip."""
    from facedub.convert.config import ConvertConfig

    tex = textured_frames(16, (512, 512), seed=7)
    yy, xx = np.mgrid[0:512, 0:512]
    frames, faces = [], []
    for i, t in enumerate(tex):
        f = _flat_plate(seed=20 + i)
        cx, cy = 256 + 12 * np.sin(i / 4), 250 + 8 * np.cos(i / 5)
        face = _circle(cx, cy, 125)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 125**2
        f[disc] = t[disc]
        frames.append(f)
        faces.append(face)
    w = wm.Watermarker(OID)
    assert wm.carries_mark(wm.face_cells(faces[0], (128, 128)))
    marked = [w.embed(f, face=p) for f, p in zip(frames, faces)]
    away = (xx < 100) | (xx > 412)
    assert all(np.array_equal(m[away], f[away]) for m, f in zip(marked, frames))  # a flat plate: untouched
    out = reencode(marked, ConvertConfig().crf)
    _ok(wm.decode(reencode(out, 28)))


def test_detection_after_crf28_on_generated_clip_with_a_face():
    """Convert's case: a mostly flat plate (little mark) with a moving face (most of it)."""
    frames, faces = [], []
    tex = textured_frames(24, (256, 256), seed=4)
    yy, xx = np.mgrid[0:256, 0:256]
    for i, t in enumerate(tex):
        f = _flat_plate((256, 256), seed=10 + i)
        cx, cy = 128 + 20 * np.sin(i / 6), 120 + 10 * np.cos(i / 5)
        disc = (xx - cx) ** 2 + ((yy - cy) / 1.25) ** 2 < 60**2
        f[disc] = t[disc]
        frames.append(f)
        faces.append(_circle(cx, cy, 60) * [1, 1.25] + [0, cy * (1 - 1.25)])
    w = wm.Watermarker(OID)
    marked = [w.embed(f, face=p) for f, p in zip(frames, faces)]
    away = (xx < 40) | (xx > 216)  # plate only, in every frame
    assert min(_psnr(m[away], f[away]) for m, f in zip(marked, frames)) > 38  # flat plate, small frame: ±3 at most
    out = reencode(marked, 18)
    _ok(wm.decode(reencode(out, 28)))
    _ok(wm.decode(jpeg(out[12])))


def test_uniform_marks_of_the_earlier_version_still_read():
    frames = textured_frames(12, (256, 256), seed=6)
    w = wm.Watermarker(OID, strength=wm.strength_for(256, 256))
    _ok(wm.decode(reencode(reencode([w.embed(f) for f in frames], 18), 28)))


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


def test_pristine_marker_is_read_as_pristine_with_its_id():
    f = textured_frames(4, (256, 256))
    for pristine in (False, True):
        w = wm.Watermarker(OID, pristine=pristine)
        r = wm.decode([w.embed(x) for x in f])
        assert r.found and r.output_id == OID
        assert r.pristine is pristine
    # the two markers give different codewords for the same id
    assert not np.array_equal(wm.encode_payload(OID), wm.encode_payload(OID, pristine=True))


def test_pasted_cells_given_directly_give_the_swap_s_amplitude():
    """A real clip marked with its swapped twin's changed cells gets the same levels per cell."""
    plate = textured_frames(1, (256, 256))[0]
    swapped = plate.copy()
    swapped[96:160, 96:160] = 255 - swapped[96:160, 96:160]  # a "pasted face"
    face = np.array([[90, 90], [166, 90], [166, 166], [90, 166]], float)
    a = wm.Watermarker(OID)
    b = wm.Watermarker(OID, pristine=True)
    swap_delta = a.embed(swapped, face, plate).astype(int) - swapped
    cells = wm.changed_cells(swapped, plate)
    real_delta = b.embed(plate, face, None, cells).astype(int) - plate
    # same amplitude per cell (the ±sign differs with the payload); away from saturation
    ok = (plate > 10) & (plate < 245) & (swapped > 10) & (swapped < 245)
    assert np.array_equal(np.abs(swap_delta)[ok], np.abs(real_delta)[ok])
    # without the cells the face share would go to the whole hull: a different (stronger) mark
    assert not np.array_equal(np.abs(b.embed(plate, face).astype(int) - plate)[ok], np.abs(real_delta)[ok])
