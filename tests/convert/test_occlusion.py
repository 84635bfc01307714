"""Occlusion: synthetic occluders, the segmentation network, and convert keeping what is in front of the face."""

import importlib.util
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from tests.conftest import write_test_video

from facedub.convert import ConvertConfig, convert_preview, convert_video
from facedub.convert import occlusion as oc
from facedub.convert.mask import paste_mask
from facedub.errors import BadInput, ModelMismatch
from facedub.faces.align import align_matrix, crop_to_model, crop_to_model_matrix, face_outline, points5_from_68, transform_points

_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).with_name("tinymodel.py"))
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_spec))
if not hasattr(helpers, "FakeDetector"):
    _spec.loader.exec_module(helpers)


def _decode(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


# --- synthesis ---------------------------------------------------------------------------------
def _drawn_face(rng, n=256):
    """A crude aligned 'face' crop: a skin ellipse with eyes and a mouth on a random background,
    and template-aligned 68 landmarks in its pixels."""
    import cv2

    lm = helpers.mean_face_68((n / 2, n / 2), n / 2)
    img = oc.random_texture(rng, n).astype(np.uint8)
    hull = cv2.convexHull(np.round(face_outline(lm, 0.3)).astype(np.int32))
    tone = oc.SKIN_TONES[int(rng.integers(0, len(oc.SKIN_TONES)))]
    cv2.fillConvexPoly(img, hull, tuple(int(v) for v in tone))
    for idx in (range(36, 42), range(42, 48), range(48, 60)):
        cv2.fillConvexPoly(img, cv2.convexHull(np.round(lm[list(idx)]).astype(np.int32)), (40, 20, 20))
    return img, lm


def test_occluder_synthesis_is_seeded_and_hides_part_of_the_face():
    rng = np.random.default_rng(0)
    crops, lms = zip(*[_drawn_face(rng) for _ in range(3)])
    data = oc.crop_set(crops, lms, size=32)
    assert data.images.shape == (3, 64, 64, 3) and data.faces.shape == (3, 64, 64)
    a = oc.synth_batch(np.random.default_rng(7), data, 12, 32)
    b = oc.synth_batch(np.random.default_rng(7), data, 12, 32)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)  # the same seed draws the same pairs
    x, y, f = a
    assert x.dtype == np.uint8 and x.shape == (12, 32, 32, 3)
    assert y.min() >= 0 and y.max() <= 1 and (y <= f + 1e-6).all()  # visible ⊆ face
    assert ((f > 0.5) & (y < 0.5)).any()  # some face pixels are hidden


@pytest.mark.parametrize("kind", oc.OCCLUDER_KINDS)
def test_every_occluder_kind_draws_something(kind):
    rng = np.random.default_rng(3)
    eyes = np.array([[48.0, 55.0], [80.0, 55.0]])
    other = (np.random.default_rng(1).random((128, 128, 3)) * 255).astype(np.uint8)
    alpha, colour, got = oc.random_occluder(rng, 128, eyes=eyes, face_rgb=np.array([200.0, 150, 120]), others=[other], kind=kind)
    assert got == kind and alpha.shape == (128, 128) and colour.shape == (128, 128, 3)
    assert 0 <= alpha.min() and alpha.max() <= 1 and alpha.max() > 0.3
    if kind == "glasses":  # thin rims near the eyes, not a slab
        assert alpha[55, 64 - 40 : 64 + 40].max() > 0.3 and (alpha > 0.5).mean() < 0.35


def test_hidden_counts_faint_tints_and_clear_lenses_as_visible():
    h = oc.hidden(np.array([0.0, 0.1, 0.25, 0.5, 1.0]))
    assert h[0] == 0 and h[1] == 0 and 0 < h[2] < 1 and h[3] == 1 and h[4] == 1


# --- the network -------------------------------------------------------------------------------
def _blue_disc(img, centre, radius):
    import cv2

    out = img.copy()
    cv2.circle(out, centre, radius, (20, 40, 230), -1)
    hole = np.zeros(img.shape[:2], np.uint8)
    cv2.circle(hole, centre, radius, 1, -1)
    return out, hole.astype(bool)


def test_segmentation_trains_in_seconds_and_keeps_an_occluder_out(tmp_path):
    rng = np.random.default_rng(0)
    crops, lms = zip(*[_drawn_face(rng) for _ in range(12)])
    data = oc.crop_set(crops, lms, size=32)
    cfg = oc.OcclusionTrainConfig(steps=150, batch=12, widths=(6, 12, 24), size=32, lr=5e-3, seed=0, looks=False)
    net = oc.train_occlusion(data, cfg)
    path = tmp_path / "occ.safetensors"
    oc.save_weights(path, net, oc.OcclusionInfo(size=32, widths=cfg.widths, trained="test"))
    model = oc.load_occlusion(path)
    assert model.size == 32 and model.info.trained == "test"
    # A face it has not seen, with a blue disc over the cheek.
    face, lm = _drawn_face(np.random.default_rng(99))
    covered, hole = _blue_disc(face, (150, 160), 28)
    m = crop_to_model_matrix(oc.SEG_COVERAGE, 32)
    x = crop_to_model(covered, oc.SEG_COVERAGE, 32)
    p = model(x)
    import cv2

    hole32 = cv2.warpAffine(hole.astype(np.float32), m, (32, 32)) > 0.9
    face32 = oc.face_target(lm, 32) > 0.5
    vis_face = face32 & ~cv2.dilate(hole32.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    inner = cv2.erode(vis_face.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert p[hole32].mean() < 0.4, p[hole32].mean()  # the occluder is left out ...
    assert p[inner].mean() > 0.6, p[inner].mean()  # ... the rest of the face is in
    assert oc.hidden_iou(p, (~hole32 & face32).astype(np.float32), face32.astype(np.float32)) > 0.3


def test_weights_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelMismatch, match="not usable occlusion weights"):
        oc.load_occlusion(bad)
    with pytest.raises(ModelMismatch, match="not found"):
        oc.load_occlusion(tmp_path / "missing.safetensors")


def test_shipped_weights_are_small_safetensors_and_load():
    assert oc.WEIGHTS.is_file() and oc.WEIGHTS.stat().st_size < 2_000_000
    assert oc.WEIGHTS.read_bytes()[8:9] == b"{"  # safetensors: u64 header length, then JSON
    model = oc.load_occlusion()
    assert model.size == oc.SEG_SIZE and "train_occlusion" in model.info.trained
    p = model(np.zeros((2, model.size, model.size, 3), np.uint8))
    assert p.shape == (2, model.size, model.size) and np.isfinite(p).all()


@pytest.mark.shared
def test_shipped_weights_give_a_sensible_mask_on_a_real_face(shared_data):
    """On a GRID speaker the training never saw (sbwe5n, a real person): the face is visible, the
    background is not, and a dark bar across the mouth (a microphone) is found hidden."""
    from facedub.faces.detect import FaceDetector
    from facedub.media.reader import open_media

    rgb = next(iter(open_media(shared_data / "grid" / "sbwe5n.mpg").frames(start=30, limit=1))).rgb
    with FaceDetector() as det:
        faces = det.detect(rgb)
    assert faces
    lm = np.asarray(faces[0].landmarks68, np.float64)
    a = align_matrix(points5_from_68(lm))
    model = oc.load_occlusion()
    x, to_seg = model.inputs(rgb, a)
    p = model(x)
    lm_seg = transform_points(lm, to_seg)
    face = oc.visible_share(p, lm_seg)
    assert face > 0.85, face  # the clear face reads as visible
    assert p[:4].mean() < 0.2 and p[:, :3].mean() < 0.3  # the top and side borders are not face
    # A dark bar across the mouth, drawn in the frame.
    import cv2

    bar = rgb.copy()
    mouth = lm[48:68].mean(0)
    w = np.ptp(lm[:, 0])
    p0 = (int(mouth[0] - 0.5 * w), int(mouth[1]))
    p1 = (int(mouth[0] + 0.5 * w), int(mouth[1]))
    cv2.line(bar, p0, p1, (25, 25, 30), int(0.12 * w))
    pb = model(model.inputs(bar, a)[0])
    mouth_seg = transform_points(mouth[None], to_seg)[0].round().astype(int)
    r = 2
    assert pb[mouth_seg[1] - r : mouth_seg[1] + r + 1, mouth_seg[0] - r : mouth_seg[0] + r + 1].mean() < 0.3
    eyes_seg = transform_points(lm[36:48].mean(0)[None], to_seg)[0].round().astype(int)
    assert pb[eyes_seg[1], eyes_seg[0]] > 0.5  # the eyes above the bar stay visible


@pytest.mark.shared
@pytest.mark.xfail(strict=True, reason="the shipped weights call 21-95 % of these clear faces hidden (why occlusion is off by default); "
                   "weights from the current bench/train_occlusion.py pass this but find less of a dark bar over the mouth, so they are not shipped yet")
def test_shipped_weights_call_a_clear_face_visible_under_hard_shadow_and_darker_skin(shared_data):
    """Held-out faces (a GRID speaker and the portrait aiface6, never trained on) with nothing in
    front of them, as they are, half in hard shadow, and darker and warmer as a deep skin tone:
    the network calls at most a small share of the pasted face hull hidden (what it calls hidden
    stays unswapped). bench/occlusion_heldout.py measures the same over 33 faces and more conditions."""
    import cv2

    from facedub.faces.align import CROP_SIZE, warp
    from facedub.faces.detect import FaceDetector
    from facedub.media.reader import load_image, open_media

    pictures = [
        next(iter(open_media(shared_data / "grid" / "swiz3n.mpg").frames(start=40, limit=1))).rgb,
        np.ascontiguousarray(np.asarray(load_image(shared_data / "portraits" / "aiface6.png"))[..., :3]),
    ]
    model = oc.load_occlusion()
    shares = {}
    with FaceDetector() as det:
        for k, rgb in enumerate(pictures):
            f = det.detect(rgb)[0]
            a = align_matrix(f.points5)
            crop = warp(rgb, a, CROP_SIZE).astype(np.float32)
            lm = transform_points(np.asarray(f.landmarks68, np.float64), a)
            # Shadow: everything left of the line through the nose bridge and tip at 35 % light, edge soft 1.5 px.
            top, tip = lm[27], lm[30]
            yy, xx = np.mgrid[0:CROP_SIZE, 0:CROP_SIZE].astype(np.float32)
            side = ((xx - tip[0]) * (tip[1] - top[1]) - (yy - tip[1]) * (tip[0] - top[0]) < 0).astype(np.float32)
            side = cv2.GaussianBlur(side, (0, 0), 1.5)[..., None]
            lab = cv2.cvtColor(crop.astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
            lab[..., 0] *= 0.45
            lab[..., 1:] = 128 + (lab[..., 1:] - 128) * 1.1 + 6
            looks = {
                "as is": crop,
                "hard shadow": crop * (1 - 0.65 * side),
                "darker skin": cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32),
            }
            hull = transform_points(face_outline(lm, 0.1), crop_to_model_matrix(model.coverage, model.size))
            for name, img in looks.items():
                x = crop_to_model(np.clip(img + 0.5, 0, 255).astype(np.uint8), model.coverage, model.size)
                shares[(k, name)] = 1 - oc.visible_share(model(x), hull)
    assert max(shares.values()) <= 0.08, shares


# --- compositing -------------------------------------------------------------------------------
def test_paste_mask_leaves_out_what_the_visible_map_hides():
    shape = (120, 120)
    to_roi = np.array([[2.0, 0, 10], [0, 2.0, 10]])  # a 50 px model square → 100 px in the ROI
    hull = np.array([[20.0, 20], [100, 20], [100, 100], [20, 100]])
    base = paste_mask(shape, hull, to_roi, 50, erode_px=2, feather_px=4)
    visible = np.ones((40, 40), np.float32)
    visible[10:20, 10:20] = 0.0  # a hidden square; the map's pixels → ROI ×2, offset 20
    to_roi_v = np.array([[2.0, 0, 20], [0, 2.0, 20]])
    m = paste_mask(shape, hull, to_roi, 50, erode_px=2, feather_px=4, visible=visible, visible_to_roi=to_roi_v)
    assert m[41:59, 41:59].max() < 1e-3 and m[40:60, 40:60].mean() < 0.05  # the hidden part (ROI 40–60) is not pasted
    assert base[40:60, 40:60].min() > 0.99
    np.testing.assert_allclose(m[75:95, 75:95], base[75:95, 75:95])  # far from it nothing changes
    with pytest.raises(ValueError):
        paste_mask(shape, hull, to_roi, 50, visible=visible)


def test_config_and_cli_know_the_option():
    assert ConvertConfig().occlusion == "off"  # opt-in until the network generalises (see the config comment)
    with pytest.raises(BadInput, match="occlusion"):
        ConvertConfig(occlusion="maybe")
    from facedub.cli import build_parser

    p = build_parser()
    for cmd in (["convert", "t.mp4", "--model", "m", "--out", "o.mp4"], ["swap", "--source", "s.mp4", "--target", "t.mp4", "--out", "o.mp4"]):
        assert p.parse_args(cmd + ["--occlusion", "off"]).occlusion == "off"
        with pytest.raises(SystemExit):
            p.parse_args(cmd + ["--occlusion", "maybe"])


class _BlueFinder:
    """An occlusion-model stand-in: the face is visible except where the input is saturated blue."""

    size, coverage = 32, oc.SEG_COVERAGE
    info = oc.OcclusionInfo(size=32, trained="stand-in")

    def inputs(self, rgb, frame_to_crop):
        return oc.seg_input(rgb, frame_to_crop, self.size, self.coverage)

    def __call__(self, batch):
        b = np.asarray(batch).astype(int)
        blue = (b[..., 2] > 150) & (b[..., 0] < 90) & (b[..., 1] < 110)
        return (~blue).astype(np.float32)


W, H = 128, 96
BAR = (slice(52, 62), slice(40, 88))  # rows, columns of the pasted blue bar (over the face's lower half)


def _clip_with_bar(path, frames=8):
    """A test clip (moving gradients) with a saturated blue bar pasted at a known place."""
    src = write_test_video(path.with_name("plain.mp4"), frames=frames, size=(W, H), fps=25)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv444p"
        vs.options = {"crf": "0"}
        for img in _decode(src):
            img[BAR] = (20, 40, 230)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_convert_keeps_a_pasted_occluder_with_occlusion_auto(tmp_path, monkeypatch, mode):
    import facedub.convert.pipeline as pipeline

    monkeypatch.setattr(oc, "load_occlusion", lambda path=None: _BlueFinder())
    clip = _clip_with_bar(tmp_path / "bar.mp4")
    out = tmp_path / "out.mp4"
    cfg = ConvertConfig(occlusion=mode, color="none", crf=0, visible_label=False, batch=4)
    s = convert_video(clip, helpers.InvertNet(), out, cfg, detector=helpers.FakeDetector((H, W)))
    assert s.swapped == 8 and "occlusion" in s.busy if mode == "auto" else "occlusion" not in s.busy
    fin, fout = _decode(clip), _decode(out)
    inner = (slice(BAR[0].start + 2, BAR[0].stop - 2), slice(BAR[1].start + 2, BAR[1].stop - 2))
    diff = np.mean([np.abs(fout[i][inner].astype(int) - fin[i][inner].astype(int)).mean() for i in range(8)])
    if mode == "auto":
        assert diff < 8, diff  # the bar stays in front (the invisible watermark's few levels aside)
    else:
        assert diff > 60, diff  # painted over by the inverted face
    # The face around the bar is swapped either way.
    above = (slice(30, 40), slice(54, 74))
    assert np.abs(fout[0][above].astype(int) - fin[0][above].astype(int)).mean() > 30
    assert pipeline.occlusion_model(cfg) is None if mode == "off" else isinstance(pipeline.occlusion_model(cfg), _BlueFinder)


def test_preview_shows_the_mask_panel(tmp_path, monkeypatch):
    monkeypatch.setattr(oc, "load_occlusion", lambda path=None: _BlueFinder())
    clip = _clip_with_bar(tmp_path / "bar.mp4", frames=3)
    png = tmp_path / "p.png"
    res = convert_preview(clip, helpers.InvertNet(), 1, png, ConvertConfig(occlusion="auto", visible_label=False), detector=helpers.FakeDetector((H, W)))
    assert res.face_found
    panel = np.asarray(Image.open(png))[:, 2 * W :].astype(int)
    assert panel.shape == (H, W, 3)
    # Green where the face is pasted, red over the hidden bar inside the face.
    assert (panel[36, 64, 1] - panel[36, 64, 0]) > 60
    bar = panel[56, 60]
    assert bar[0] - bar[1] > 60, bar


def test_a_face_the_network_cannot_read_is_pasted_through_the_landmarks(tmp_path, monkeypatch):
    class _SeesNothing(_BlueFinder):
        def __call__(self, batch):
            return np.zeros(np.asarray(batch).shape[:3], np.float32)

    monkeypatch.setattr(oc, "load_occlusion", lambda path=None: _SeesNothing())
    clip = write_test_video(tmp_path / "plain.mp4", frames=4, size=(W, H), fps=25)
    out = tmp_path / "out.mp4"
    convert_video(clip, helpers.InvertNet(), out, ConvertConfig(occlusion="auto", color="none", visible_label=False), detector=helpers.FakeDetector((H, W)))
    fin, fout = _decode(clip), _decode(out)
    c = (slice(H // 2 - 5, H // 2 + 5), slice(W // 2 - 5, W // 2 + 5))
    assert np.abs(fout[0][c].astype(int) - fin[0][c].astype(int)).mean() > 30


# --- end to end on the shared clip with the shipped weights -----------------------------------
@pytest.mark.shared
@pytest.mark.slow
def test_shared_clip_with_a_pasted_microphone_keeps_the_microphone(shared_data, tmp_path):
    """aiface1 with a dark microphone (a ball on a stick) pasted in front of the mouth at a known
    mask; a briefly trained tiny model; landmarks of the clean frames (a fixed detector). With
    occlusion auto its pixels come back (nearly) as they went in; with off they are painted over."""
    import cv2

    from facedub.faces.detect import FaceDetector
    from facedub.media.reader import open_media

    clip = shared_data.joinpath(*helpers.CLIP)
    frames = [f.rgb for f in open_media(clip).frames(start=500, limit=6)]
    with FaceDetector() as det:
        lm = np.asarray(det.detect(frames[0])[0].landmarks68, np.float64)
    w = float(np.ptp(lm[:, 0]))
    head = tuple(int(v) for v in lm[48:68].mean(0) + (0.05 * w, 0.15 * w))
    canvas = np.zeros((512, 512), np.uint8)
    cv2.line(canvas, head, (head[0] + int(0.1 * w), 520), 255, int(0.09 * w), cv2.LINE_AA)
    cv2.circle(canvas, head, int(0.14 * w), 255, -1, cv2.LINE_AA)
    alpha = canvas.astype(np.float32) / 255
    colour = np.full((512, 512, 3), 45.0, np.float32)
    path = tmp_path / "mic.mp4"
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 512, 512, "yuv444p"
        vs.options = {"crf": "0"}
        for f in frames:
            img = (oc.composite(f, alpha, colour) + 0.5).astype(np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    face = cv2.fillConvexPoly(np.zeros((512, 512), np.uint8), cv2.convexHull(np.round(face_outline(lm, 0.1)).astype(np.int32)), 1) > 0
    covered = face & (cv2.erode((alpha > 0.99).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    assert covered.sum() > 2000

    class Fixed:
        def detect(self, rgb):
            return [helpers.FakeFace((0, 0, 1, 1), 0.9, lm)]

    model = helpers.train_tiny_model(tmp_path / "m", clip, steps=12)
    fin = _decode(path)
    psnr = {}
    for mode in ("auto", "off"):
        out = tmp_path / f"{mode}.mp4"
        convert_video(path, model, out, ConvertConfig(occlusion=mode, crf=12, visible_label=False), detector=Fixed())
        fout = _decode(out)
        mse = np.mean([((fout[i][covered].astype(float) - fin[i][covered].astype(float)) ** 2).mean() for i in range(len(fin))])
        psnr[mode] = 10 * np.log10(255.0**2 / mse)
    assert psnr["auto"] >= 30 and psnr["off"] < psnr["auto"] - 6, psnr
