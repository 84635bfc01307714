"""The convert pipeline with a fake detector and a stand-in model (no shared media needed)."""

import hashlib
import importlib.util
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from tests.conftest import write_test_video
from PIL import Image

from facedub.convert import ConvertConfig, convert_preview, convert_video
from facedub.convert.blend import model_input
from facedub.errors import BadInput, Cancelled
from facedub.media.reader import frame_rgb
from facedub.faces.align import CROP_SIZE, crop_to_model, crop_to_model_matrix, face_outline, warp
from facedub.progress import RecordingReporter

_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).with_name("tinymodel.py"))
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_spec))
if not hasattr(helpers, "FakeDetector"):
    _spec.loader.exec_module(helpers)

W, H = 128, 96


@pytest.fixture(autouse=True)
def _no_occlusion_model(monkeypatch):
    """The drawn stand-in faces here are no faces to the occlusion network: these tests paste
    through the landmark mask alone (tests/convert/test_occlusion.py covers occlusion)."""
    import facedub.convert.pipeline as pipeline

    monkeypatch.setattr(pipeline, "occlusion_model", lambda config, model=None: None)


def _decode(path):
    """Every frame as facedub's reader converts it (the decode convert and its preview use)."""
    with av.open(str(path)) as c:
        return [frame_rgb(f) for f in c.decode(video=0)]


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _image_target(tmp_path):
    """A W×H gradient image saved as the target, and the output path next to it."""
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([xx * 2 % 256, yy * 2 % 256, (xx + yy) % 256], -1).astype(np.uint8)
    src = tmp_path / "face.png"
    Image.fromarray(img).save(src)
    return img, src, tmp_path / "out.png"


@pytest.fixture
def video(tmp_path):
    return write_test_video(tmp_path / "in.mp4", frames=30, size=(W, H), fps=25, audio=True)


def test_passthrough_bridging_counts_and_frames(video, tmp_path):
    # Frames 10-12 lose the face (≤ max_gap: bridged); 20-29 lose it for good (passed through).
    det = helpers.FakeDetector((H, W), present=lambda i: not (10 <= i < 13 or i >= 20))
    out = tmp_path / "out.mp4"
    before = _sha(video)
    rep = RecordingReporter()
    s = convert_video(video, helpers.InvertNet(), out, ConvertConfig(max_gap=5, batch=4), rep, detector=det)
    assert (s.frames, s.swapped, s.bridged, s.no_face) == (30, 20, 3, 10)
    assert s.audio and s.width == W and s.height == H and s.fps == 25
    assert rep.done == 30 and rep.phases[0][0] == "content check" and rep.phases[-1] == ("convert", 30)
    assert any("10 of 30 frames had no face" in n for n in rep.notes)
    assert _sha(video) == before
    frames_in, frames_out = _decode(video), _decode(out)
    assert len(frames_out) == 30
    centre = (slice(H // 2 - 5, H // 2 + 5), slice(W // 2 - 5, W // 2 + 5))
    # Swapped (and bridged) frames: the face centre is inverted; passed-through ones are not
    # (they differ only by codec noise and the invisible watermark, a few grey levels).
    for i in (0, 11, 19):
        diff = np.abs(frames_out[i][centre].astype(int) - frames_in[i][centre].astype(int)).mean()
        assert diff > 30, i
    for i in (22, 29):
        diff = np.abs(frames_out[i][centre].astype(int) - frames_in[i][centre].astype(int)).mean()
        assert diff < 6, i


def test_no_face_anywhere_is_an_error_and_writes_nothing(video, tmp_path):
    out = tmp_path / "out.mp4"
    det = helpers.FakeDetector((H, W), present=lambda i: False)
    with pytest.raises(BadInput, match="no face of the target person found in any of the 30 frames"):
        convert_video(video, helpers.InvertNet(), out, ConvertConfig(), detector=det)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_image_target_changes_only_inside_the_face(tmp_path):
    img, src, out = _image_target(tmp_path)
    det = helpers.FakeDetector((H, W))
    s = convert_video(src, helpers.InvertNet(), out, ConvertConfig(color="none"), detector=det)
    assert s.kind == "image" and s.frames == 1 and s.swapped == 1
    res = np.asarray(Image.open(out))
    assert res.shape == img.shape
    hull = face_outline(det.lm, ConvertConfig().forehead)
    x0, y0 = np.floor(hull.min(axis=0)).astype(int)
    x1, y1 = np.ceil(hull.max(axis=0)).astype(int)
    outside = np.ones((H, W), bool)
    outside[y0 : y1 + 1, x0 : x1 + 1] = False
    # PNG is lossless: outside the landmark hull's box the pixels are bit-identical to the input
    # carrying this output's marks (visible label, invisible watermark of its output id).
    marked = helpers.with_marks_of(out, img)
    np.testing.assert_array_equal(res[outside], marked[outside])
    c = (slice(H // 2 - 3, H // 2 + 3), slice(W // 2 - 3, W // 2 + 3))
    assert np.abs(res[c].astype(int) - (255 - img[c].astype(int))).mean() < 12  # inverted there


def test_image_target_needs_image_output(tmp_path):
    src = tmp_path / "face.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(src)
    with pytest.raises(BadInput, match="must be"):
        convert_video(src, helpers.InvertNet(), tmp_path / "o.mp4", detector=helpers.FakeDetector((H, W)))


def test_bad_paths(video, tmp_path):
    det = helpers.FakeDetector((H, W))
    with pytest.raises(BadInput, match="overwrite the input"):
        convert_video(video, helpers.InvertNet(), video, detector=det)
    with pytest.raises(BadInput, match="does not exist"):
        convert_video(video, helpers.InvertNet(), tmp_path / "nope" / "o.mp4", detector=det)
    with pytest.raises(BadInput, match="not a facedub model"):
        convert_video(video, tmp_path, tmp_path / "o.mp4", detector=det)
    with pytest.raises(BadInput, match="no such"):
        convert_video(tmp_path / "missing.mp4", helpers.InvertNet(), tmp_path / "o.mp4", detector=det)


def test_cancel_leaves_no_output(video, tmp_path):
    rep = RecordingReporter()
    rep.stop_requested = True
    out = tmp_path / "out.mp4"
    with pytest.raises(Cancelled):
        convert_video(video, helpers.InvertNet(), out, ConvertConfig(), rep, detector=helpers.FakeDetector((H, W)))
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_smoothing_reduces_landmark_jitter(video, tmp_path):
    det = helpers.FakeDetector((H, W), jitter=1.0)
    s = convert_video(video, helpers.InvertNet(), tmp_path / "o.mp4", ConvertConfig(), detector=det)
    assert s.jitter_raw is not None and s.jitter_smoothed < s.jitter_raw / 3
    det = helpers.FakeDetector((H, W), jitter=1.0)
    s2 = convert_video(video, helpers.InvertNet(), tmp_path / "o2.mp4", ConvertConfig(smooth="none"), detector=det)
    assert s2.jitter_smoothed == pytest.approx(s2.jitter_raw)


def test_max_frames_and_poisson_hist_options(video, tmp_path):
    out = tmp_path / "o.mp4"
    cfg = ConvertConfig(max_frames=7, blend="poisson", color="hist", mask="hull", erode=1, feather=3)
    s = convert_video(video, helpers.InvertNet(), out, cfg, detector=helpers.FakeDetector((H, W)))
    assert s.frames == 7 and len(_decode(out)) == 7


def test_preview_writes_before_after(video, tmp_path):
    out = tmp_path / "p.png"
    res = convert_preview(video, helpers.InvertNet(), 17, out, ConvertConfig(), detector=helpers.FakeDetector((H, W)))
    assert res.face_found
    pair = np.asarray(Image.open(out))
    assert pair.shape == (H, 3 * W, 3)  # before | after | mask
    frame17 = _decode(video)[17]
    # "before" is frame 17 plus the invisible watermark (at most ±5 grey levels at this size)
    diff = np.abs(pair[:, :W].astype(int) - frame17.astype(int))
    assert diff.max() <= 5
    from facedub.safety.verify import verify_file

    assert verify_file(out).marked  # too small for the watermark alone; the shared-clip test checks it
    with pytest.raises(BadInput, match="past the end"):
        convert_preview(video, helpers.InvertNet(), 99, out, detector=helpers.FakeDetector((H, W)))


def test_model_input_matches_exact_matrix():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:200, 0:240]
    img = np.stack([np.sin(xx / 9.0) * 100 + 128, np.cos(yy / 7.0) * 100 + 128, (xx + yy) % 256 * 0 + 90], -1).astype(np.uint8)
    lm = helpers.mean_face_68((120, 100), 90) + rng.normal(0, 0.5, (68, 2))
    x, a, m = model_input(img, lm, 0.6875, 64)
    direct = warp(img, m, 64)
    # Same geometry as training's crop → crop_to_model (up to resampling blur).
    assert np.abs(direct.astype(int) - x.astype(int)).mean() < 3
    off = crop_to_model_matrix(0.6875, 64)
    assert off[0, 0] == pytest.approx(64 / 176)


@pytest.mark.parametrize("coverage,size", [(0.6875, 64), (0.875, 80), (0.8, 48)])
def test_model_input_is_training_cut(coverage, size):
    """Warping only the kept part of the crop gives training's crop → crop_to_model pixels."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (300, 280, 3), dtype=np.uint8)
    lm = helpers.mean_face_68((140, 150), 110) + rng.normal(0, 0.5, (68, 2))
    x, a, _ = model_input(img, lm, coverage, size)
    ref = crop_to_model(warp(img, a, CROP_SIZE), coverage, size)
    diff = np.abs(x.astype(int) - ref.astype(int))
    assert x.shape == (size, size, 3) and diff.max() <= 1 and (diff > 0).mean() < 0.01


class _TwoFaces:
    """Two faces per frame: the target on the left (track 0), someone else on the right (track 1)."""

    def __init__(self):
        self.left = helpers.mean_face_68((W * 0.27, H / 2), 0.4 * H)
        self.right = helpers.mean_face_68((W * 0.73, H / 2), 0.4 * H)

    def detect(self, rgb):
        faces = []
        for track, lm in ((1, self.right), (0, self.left)):
            x0, y0 = lm.min(axis=0)
            x1, y1 = lm.max(axis=0)
            faces.append(helpers.FakeFace((x0, y0, x1, y1), 0.9, lm, track))
        return faces


class _Encoder:
    """Descriptor = 128 values of the face's mean x position (left face ≈ target)."""

    calls = 0

    def descriptor(self, rgb, lm68):
        _Encoder.calls += 1
        return np.full(128, 0.0 if lm68[:, 0].mean() < W / 2 else 1.0)


def test_only_the_target_identity_is_swapped_and_descriptors_are_cached(tmp_path):
    video = _plan_video(tmp_path / "still.mp4", [(30, 1, None)])  # a still background: the faces' look stays put
    model = helpers.InvertNet()
    model.meta = {**model.meta, "target_descriptor": [0.0] * 128}
    out = tmp_path / "o.mp4"
    _Encoder.calls = 0
    s = convert_video(video, model, out, ConvertConfig(identity_every=10, color="none", crf=0), detector=_TwoFaces(), identity=_Encoder)
    assert s.swapped == 30
    # Two tracks checked on frames 1, 11, 21: 6 descriptor calls, not 60.
    assert _Encoder.calls == 6
    fin, fout = helpers.with_marks_of(out, _decode(video)[5]), _decode(out)[5]
    left = (slice(H // 2 - 4, H // 2 + 4), slice(int(W * 0.27) - 4, int(W * 0.27) + 4))
    right = (slice(H // 2 - 4, H // 2 + 4), slice(int(W * 0.73) - 4, int(W * 0.73) + 4))
    assert np.abs(fout[left].astype(int) - fin[left].astype(int)).mean() > 40
    assert np.abs(fout[right].astype(int) - fin[right].astype(int)).mean() < 6


def test_no_target_among_several_faces_passes_through(video, tmp_path):
    model = helpers.InvertNet()
    model.meta = {**model.meta, "target_descriptor": [5.0] * 128}  # nobody is close
    with pytest.raises(BadInput, match="no face of the target person"):
        convert_video(video, model, tmp_path / "o.mp4", detector=_TwoFaces(), identity=_Encoder)


@pytest.mark.parametrize("forehead", [0.0, 0.5])
def test_forehead_option_extends_the_outline_above_the_brows(tmp_path, forehead):
    img, src, out = _image_target(tmp_path)
    det = helpers.FakeDetector((H, W))
    cfg = ConvertConfig(mask="hull", color="none", erode=0, feather=1, forehead=forehead)
    convert_video(src, helpers.InvertNet(coverage=0.95), out, cfg, detector=det)
    res = np.asarray(Image.open(out)).astype(int)
    brows = det.lm[17:27]
    lifted = face_outline(det.lm, 0.5)[68:]
    # A band between the brows and halfway up to the lifted points, across the middle brows.
    y_lo, y_hi = int(np.ceil(lifted[:, 1].max() + 1)), int(np.floor(brows[:, 1].min() - 1))
    assert y_hi > y_lo
    band = (slice(y_lo, y_hi), slice(int(brows[3, 0]), int(brows[6, 0])))
    inverted = np.abs(res[band] - (255 - img[band].astype(int))).mean() < 20
    untouched = np.abs(res[band] - helpers.with_marks_of(out, img)[band].astype(int)).max() == 0
    assert (inverted, untouched) == ((True, False) if forehead else (False, True))


def test_forehead_must_be_a_share():
    with pytest.raises(BadInput, match="forehead"):
        ConvertConfig(forehead=1.5)


@pytest.mark.parametrize("mask_value, changed", [(0.0, False), (1.0, True)])
def test_learned_mask_is_intersected(tmp_path, mask_value, changed):
    img, src, out = _image_target(tmp_path)
    model = helpers.InvertNet(learned=True, mask_value=mask_value)
    convert_video(src, model, out, ConvertConfig(mask="learned-hull"), detector=helpers.FakeDetector((H, W)))
    res = np.asarray(Image.open(out))
    assert np.array_equal(res, helpers.with_marks_of(out, img)) != changed


def test_model_parallelism_shares_cores_out():
    from facedub.convert.pipeline import model_parallelism

    cfg = ConvertConfig()
    assert model_parallelism(cfg, "cpu", 2) == (2, 1)
    assert model_parallelism(cfg, "cpu", 8) == (2, 4)
    assert model_parallelism(cfg, "cpu", 1) == (1, 1)
    assert model_parallelism(cfg, "cuda", 8) == (1, 8)
    assert model_parallelism(ConvertConfig(workers=1), "cpu", 2) == (1, 2)
    assert model_parallelism(ConvertConfig(workers=3, threads=2), "cpu", 2) == (3, 2)
    with pytest.raises(BadInput, match="workers"):
        ConvertConfig(workers=0)


def test_runner_precision_bf16_stays_within_a_level_or_two_of_fp32():
    import torch

    from facedub.convert.runner import Runner
    from facedub.model import build_model, default_config

    torch.manual_seed(0)
    cfg = default_config("lite", width=0.25, learned_mask=True)

    class Loaded:
        net = build_model("lite", cfg)
        config = cfg

    x = np.random.default_rng(0).integers(0, 256, (4, cfg.size, cfg.size, 3), dtype=np.uint8)
    fp32, bf16 = Runner(Loaded, precision="fp32"), Runner(Loaded, precision="bf16")
    assert (fp32.precision, fp32.amp_dtype) == ("fp32", None)
    assert (bf16.precision, bf16.amp_dtype) == ("bf16", torch.bfloat16)
    (a, ma), (b, mb) = fp32(x), bf16(x)
    assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape == x.shape
    d = np.abs(a.astype(int) - b.astype(int))
    assert d.mean() < 1.0 and d.max() <= 4
    assert ma is not None and mb is not None and mb.dtype == np.float32
    assert np.abs(ma - mb).max() < 0.02


def test_precision_is_checked_and_reported(video, tmp_path):
    with pytest.raises(BadInput, match="precision must be one of"):
        ConvertConfig(precision="int8")
    for p in ("bf16", "fp32"):
        det = helpers.FakeDetector((H, W))
        s = convert_video(video, helpers.InvertNet(), tmp_path / f"{p}.mp4", ConvertConfig(precision=p, max_frames=4), detector=det)
        assert s.precision == p and s.swapped == 4


def test_finished_batches_hold_about_the_same_frames_whatever_the_batch():
    from facedub.convert.pipeline import finished_batches

    assert finished_batches(2, 8) == 6  # 48 frames waiting for the blender
    assert finished_batches(2, 16) * 16 == 48  # bigger batches, fewer of them
    assert finished_batches(2, 64) == 2  # never fewer than 2: a worker can always hand one over
    assert finished_batches(1, 1) == 32


class _SlowInvert:
    """InvertNet whose batches take a random time, so parallel workers finish out of order."""

    def __init__(self) -> None:
        import threading
        import time

        inner = helpers.InvertNet()
        self.config, self.meta = inner.config, inner.meta
        rng = np.random.default_rng(3)
        lock = threading.Lock()
        self.calls = 0

        class Net(type(inner.net)):
            def forward(net, x, side):  # noqa: N805, ANN001
                with lock:
                    delay = float(rng.uniform(0.0, 0.03))
                    self.calls += 1
                time.sleep(delay)
                return super().forward(x, side)

        self.net = Net()


def test_parallel_model_workers_keep_frame_order(tmp_path):
    # Every frame's blue channel is a different flat level (20·i); the stand-in inverts it.
    # A face pasted into the wrong frame would be off by 20+ levels (no colour transfer, which
    # would pull the flat face back to the frame's own level).
    video = write_test_video(tmp_path / "in.mp4", frames=12, size=(W, H), fps=25)
    det = helpers.FakeDetector((H, W))
    model = _SlowInvert()
    out = tmp_path / "out.mp4"
    s = convert_video(video, model, out, ConvertConfig(workers=3, threads=1, batch=1, queue_size=4, color="none"), detector=det)
    assert s.frames == 12 and s.swapped == 12
    assert model.calls == 12  # one call per batch of one face
    assert set(s.phases) == {"checks", "frames", "finish"}
    frames_in, frames_out = _decode(video), _decode(out)
    patch = (slice(H // 2 - 4, H // 2 + 4), slice(W // 2 - 4, W // 2 + 4), 2)
    inverted = np.array([255.0 - f[patch].mean() for f in frames_in])
    # Each output frame carries the inverse of its own input frame, not of a neighbour's.
    order = [int(np.argmin(np.abs(inverted - fo[patch].mean()))) for fo in frames_out]
    assert order == list(range(12))


def test_encoder_threads_by_frame_size():
    from facedub.media.writer import encoder_threads

    assert encoder_threads(512, 512) == 1
    assert encoder_threads(1280, 720) == 1
    assert encoder_threads(1920, 1080) == 0  # x264 decides: one thread would be the slowest stage


def test_decoder_threads_by_frame_size():
    from facedub.media.reader import decoder_threads

    assert decoder_threads(512, 512) == 1
    assert decoder_threads(1920, 1080) == 1
    assert decoder_threads(3840, 2160) is None  # FFmpeg decides: one thread would be the slowest stage


def test_opencv_runs_single_threaded_during_convert_and_is_restored(video, tmp_path):
    import cv2

    seen = []

    class Spy(helpers.FakeDetector):
        def detect(self, rgb):
            seen.append(cv2.getNumThreads())
            return super().detect(rgb)

    old = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        convert_video(video, helpers.InvertNet(), tmp_path / "o.mp4", ConvertConfig(), detector=Spy((H, W)))
        assert seen and set(seen) == {1}
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(old)


# ---------------------------------------------------------------------------------------
# Identity in every frame, shot cuts
# ---------------------------------------------------------------------------------------
FACE_C, FACE_W = (W * 0.5, H * 0.52), 0.45 * H


def _scene(seed: int) -> np.ndarray:
    """A smooth random W×H background (blobs at two scales): one per shot."""
    import cv2

    rng = np.random.default_rng(seed)
    img = sum(cv2.resize(rng.uniform(0, 1, (c, c, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC) for c in (3, 7))
    img -= img.min()
    return (img / img.max() * 150 + 40).astype(np.uint8)


def _draw_person(img: np.ndarray, who: str, center=FACE_C, width=FACE_W) -> None:
    """A face stand-in: an ellipse, warm with dark bands ("A") or cool with a bright ring ("B")."""
    import cv2

    cx, cy = int(center[0]), int(center[1])
    axes = (int(width * 0.55), int(width * 0.7))
    if who == "A":
        cv2.ellipse(img, (cx, cy), axes, 0, 0, 360, (215, 150, 110), -1)
        for dy in (-8, 0, 8):
            cv2.line(img, (cx - axes[0] + 6, cy + dy), (cx + axes[0] - 6, cy + dy), (120, 70, 50), 2)
    else:
        cv2.ellipse(img, (cx, cy), axes, 0, 0, 360, (90, 120, 200), -1)
        cv2.ellipse(img, (cx, cy), (axes[0] // 2, axes[1] // 2), 0, 0, 360, (230, 230, 240), 3)


def _plan_video(path: Path, plan: list[tuple[int, int, str | None]], fps: int = 25) -> Path:
    """Shots of ``(frames, background seed, person)`` joined by hard cuts; the background drifts
    a little (a slow pan) inside each shot."""
    frames = []
    for n, seed, who in plan:
        bg = _scene(seed)
        for i in range(n):
            f = np.roll(bg, i // 3, axis=1).copy()
            if who:
                _draw_person(f, who)
            frames.append(f)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"crf": "12"}
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    return path


def _who(rgb: np.ndarray, lm68: np.ndarray) -> str:
    x, y = np.asarray(lm68, dtype=float).mean(axis=0)
    patch = rgb[max(int(y) - 6, 0) : int(y) + 6, max(int(x) - 6, 0) : int(x) + 6].reshape(-1, 3).astype(float).mean(axis=0)
    return "A" if patch[0] > patch[2] else "B"


class _ColourEncoder:
    """Descriptor stand-in: zeros for the warm person "A" (the target), ones for anyone else."""

    calls = 0

    def descriptor(self, rgb, lm68):
        _ColourEncoder.calls += 1
        return np.zeros(128) if _who(rgb, lm68) == "A" else np.ones(128)


class _ShotDetector:
    """A face wherever a person is drawn (found by colour: the ellipse differs from the background
    pattern), one track id per shot: ``reset()`` (a cut) starts new ids, as the real detector does."""

    def __init__(self, present) -> None:
        self.present = present  # frame index → bool
        self.lm = helpers.mean_face_68(FACE_C, FACE_W)
        self.calls = self.resets = 0
        self.track = 0

    def reset(self) -> None:
        self.resets += 1
        self.track += 1

    def detect(self, rgb):
        i = self.calls
        self.calls += 1
        if not self.present(i):
            return []
        x0, y0 = self.lm.min(axis=0)
        x1, y1 = self.lm.max(axis=0)
        return [helpers.FakeFace((x0, y0, x1, y1), 0.9, self.lm, self.track)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(float) - b.astype(float)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _target_model():
    model = helpers.InvertNet()
    model.meta = {**model.meta, "target_descriptor": [0.0] * 128}
    return model


def test_cut_to_another_person_leaves_them_untouched_and_the_target_is_found_again(tmp_path):
    # target (12) | other person (10) | no face (6) | target (8): hard cuts at 12, 22, 28.
    plan = [(12, 1, "A"), (10, 2, "B"), (6, 3, None), (8, 4, "A")]
    video = _plan_video(tmp_path / "shots.mp4", plan)
    present = lambda i: not (22 <= i < 28)  # noqa: E731
    det = _ShotDetector(present)
    _ColourEncoder.calls = 0
    rep = RecordingReporter()
    out = tmp_path / "out.mp4"
    s = convert_video(video, _target_model(), out, ConvertConfig(color="none", max_gap=8, visible_label=False, crf=0), rep, detector=det, identity=_ColourEncoder)
    assert s.cuts == 3 and det.resets == 3
    assert (s.frames, s.swapped, s.bridged) == (36, 20, 0)
    # One descriptor when each shot's track is first seen (3 shots with a face; all are shorter than identity_every).
    assert _ColourEncoder.calls == 3
    fin, fout = _decode(video), _decode(out)
    x0, y0 = (det.lm.min(axis=0) - 4).astype(int)
    x1, y1 = (det.lm.max(axis=0) + 4).astype(int)
    face = (slice(max(y0, 0), y1), slice(max(x0, 0), x1))
    # Against the input carrying this output's invisible watermark (at 128×96 the watermark
    # alone costs ≈33 dB; on real frame sizes far less), encoded losslessly (crf 0; what is
    # left is 4:2:0 chroma resampled a second time at the drawn edges, ≈37 dB).
    psnr = [_psnr(helpers.with_marks_of(out, fin[i])[face], fout[i][face]) for i in range(36)]
    # The other person's and the empty frames: untouched.
    assert min(psnr[12:28]) >= 35, np.round(psnr[12:28], 1)
    # The target's frames, including the very first frame after the cut back: swapped (inverted).
    assert max(psnr[:12] + psnr[28:]) < 20, np.round(psnr, 1)
    assert not any("no descriptor" in w for w in s.warnings)


def test_lone_other_person_is_not_swapped_even_without_a_cut(tmp_path):
    # The same background throughout: person A, then B takes their place (no cut: the cut
    # detector is off, and the detector keeps the track id). The changed look of the track
    # triggers a descriptor check at once.
    plan = [(10, 1, "A"), (10, 1, "B"), (10, 1, "A")]
    video = _plan_video(tmp_path / "swap.mp4", plan)
    det = _ShotDetector(lambda i: True)
    _ColourEncoder.calls = 0
    out = tmp_path / "out.mp4"
    s = convert_video(video, _target_model(), out, ConvertConfig(color="none", cut_threshold=None, max_gap=0, visible_label=False, crf=0), detector=det, identity=_ColourEncoder)
    assert s.cuts == 0 and det.resets == 0
    assert s.swapped == 20 and _ColourEncoder.calls == 3
    fin, fout = _decode(video), _decode(out)
    face = (slice(int(FACE_C[1]) - 8, int(FACE_C[1]) + 8), slice(int(FACE_C[0]) - 8, int(FACE_C[0]) + 8))
    psnr = [_psnr(helpers.with_marks_of(out, fin[i])[face], fout[i][face]) for i in range(30)]
    assert min(psnr[10:20]) >= 35 and max(psnr[:10] + psnr[20:]) < 20, np.round(psnr, 1)


def test_without_a_target_descriptor_the_summary_says_identity_was_not_checked(tmp_path):
    video = _plan_video(tmp_path / "v.mp4", [(6, 1, "A")])
    s = convert_video(video, helpers.InvertNet(), tmp_path / "o.mp4", ConvertConfig(), detector=_ShotDetector(lambda i: True))
    assert s.swapped == 6
    assert any("no descriptor of the target person" in w for w in s.warnings)


class _Pair:
    """Two faces side by side with fixed track ids per side (0 left, 1 right), whoever is there."""

    def __init__(self) -> None:
        self.lms = [helpers.mean_face_68((W * 0.27, H / 2), 0.3 * H), helpers.mean_face_68((W * 0.73, H / 2), 0.3 * H)]

    def detect(self, rgb):
        out = []
        for track, lm in enumerate(self.lms):
            x0, y0 = lm.min(axis=0)
            x1, y1 = lm.max(axis=0)
            out.append(helpers.FakeFace((x0, y0, x1, y1), 0.9, lm, track))
        return out


def test_two_people_swapping_places_the_target_is_followed(tmp_path):
    bg = _scene(5)
    frames = []
    for i in range(30):
        f = bg.copy()
        left, right = ("A", "B") if i < 15 else ("B", "A")  # they swap places at frame 15
        _draw_person(f, left, (W * 0.27, H / 2), 0.3 * H)
        _draw_person(f, right, (W * 0.73, H / 2), 0.3 * H)
        frames.append(f)
    video = tmp_path / "pair.mp4"
    with av.open(str(video), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"crf": "12"}
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    _ColourEncoder.calls = 0
    out = tmp_path / "out.mp4"
    s = convert_video(video, _target_model(), out, ConvertConfig(color="none", crf=0, visible_label=False), detector=_Pair(), identity=_ColourEncoder)
    assert s.swapped == 30
    # Both tracks checked when first seen and again at once when their look changed hands.
    assert _ColourEncoder.calls == 4
    fin, fout = _decode(video), _decode(out)
    sides = [(slice(H // 2 - 5, H // 2 + 5), slice(int(W * x) - 5, int(W * x) + 5)) for x in (0.27, 0.73)]
    for i in range(30):
        target_side = 0 if i < 15 else 1
        marked = helpers.with_marks_of(out, fin[i])
        assert _psnr(marked[sides[target_side]], fout[i][sides[target_side]]) < 20, i
        assert _psnr(marked[sides[1 - target_side]], fout[i][sides[1 - target_side]]) >= 35, i


def test_bridging_never_crosses_a_cut():
    from facedub.convert.pipeline import _Item
    from facedub.convert.smoothing import Bridger

    lm = helpers.mean_face_68((50, 50), 40)
    items = [_Item(i, i / 25, np.zeros((2, 2, 3), np.uint8)) for i in range(8)]
    for i in (0, 1, 5, 6, 7):
        items[i].lm = lm.copy()
    items[5].cut = True  # frames 2-4 lose the face, and frame 5 starts a new shot
    b = Bridger(max_gap=5)
    out = [it for item in items for it in b.push(item)] + b.flush()
    assert [it.index for it in out] == list(range(8))
    assert [it.lm is not None for it in out] == [True, True, False, False, False, True, True, True]
    assert not any(it.bridged for it in out)
    # The same dropout inside a shot is bridged.
    items[5].cut = False
    for it in items[2:5]:
        it.lm = None
    b = Bridger(max_gap=5)
    out = [it for item in items for it in b.push(item)] + b.flush()
    assert [it.bridged for it in out] == [False, False, True, True, True, False, False, False]


def test_chooser_checks_a_lone_face_and_rechecks_after_reset_or_a_jump():
    from facedub.convert.target import TargetChooser

    class Enc:
        calls = 0

        def descriptor(self, rgb, lm68):
            Enc.calls += 1
            return np.zeros(128) if lm68[:, 0].mean() < W / 2 else np.ones(128)

    chooser = TargetChooser(np.zeros(128), ConvertConfig(identity_every=25), Enc)
    rgb = np.full((H, W, 3), 120, np.uint8)
    left = helpers.mean_face_68((W * 0.3, H / 2), 0.3 * H)
    right = helpers.mean_face_68((W * 0.7, H / 2), 0.3 * H)

    def face(lm, track):
        x0, y0 = lm.min(axis=0)
        x1, y1 = lm.max(axis=0)
        return helpers.FakeFace((x0, y0, x1, y1), 0.9, lm, track)

    assert chooser.choose(rgb, [face(right, 0)]) is None  # alone, and not the target: not taken
    assert chooser.choose(rgb, [face(right, 0)]) is None and Enc.calls == 1  # cached
    assert chooser.choose(rgb, [face(left, 0)]) is not None and Enc.calls == 2  # the track's box jumped: checked again
    chooser.reset()  # a cut
    assert chooser.choose(rgb, [face(left, 0)]) is not None and Enc.calls == 3
    for _ in range(24):
        chooser.choose(rgb, [face(left, 0)])
    assert Enc.calls == 3
    chooser.choose(rgb, [face(left, 0)])
    assert Enc.calls == 4  # the periodic re-check, identity_every frames after the last
    assert chooser.choose(rgb, []) is None
    assert chooser.choose(rgb, [face(right, 5), face(left, 6)]).track == 6
    no_target = TargetChooser(None, ConvertConfig(), Enc)
    assert no_target.choose(rgb, [face(right, 0)]) is not None  # without a descriptor: today's behaviour


@pytest.mark.shared
@pytest.mark.parametrize("width, centre", [(40, (1300, 540)), (90, (1300, 540)), (1400, (960, 540)), (500, (60, 540)), (500, (960, 800))])
def test_small_huge_and_cut_off_faces_convert_with_the_real_detector(shared_data, width, centre):
    """1920×1080: a 40 px and a 90 px face, a face bigger than the frame, faces half outside it.
    Each is found and swapped; nothing changes far from the face."""
    from facedub.convert.pipeline import convert_frame
    from facedub.faces.detect import FaceDetector

    spec = importlib.util.spec_from_file_location("faces_test_detect", Path(__file__).parents[1] / "faces" / "test_detect.py")
    td = sys.modules.setdefault("faces_test_detect", importlib.util.module_from_spec(spec))
    if not hasattr(td, "_face_in_1080p"):
        spec.loader.exec_module(td)
    frame, _ = td._face_in_1080p(shared_data, width, centre)
    with FaceDetector() as det:
        out, found = convert_frame(frame, helpers.InvertNet(), ConvertConfig(color="none"), detector=det)
        face = det.detect(frame)[0]
    assert found
    changed = np.abs(out.astype(int) - frame.astype(int)).max(axis=2) > 30
    assert changed.sum() > 0.2 * min(width, 1080) ** 2 * 0.25
    ys, xs = np.nonzero(changed)
    x0, y0, x1, y1 = face.bbox
    pad = 0.3 * max(x1 - x0, y1 - y0)
    assert xs.min() >= x0 - pad and xs.max() <= x1 + pad and ys.min() >= y0 - pad and ys.max() <= y1 + pad


def test_a_confirmed_track_is_held_a_little_beyond_max_distance_a_new_one_is_not():
    from facedub.convert.target import HOLD_MARGIN, TargetChooser

    distances = iter([0.35, 0.45, 0.45])

    class Enc:
        def descriptor(self, rgb, lm68):
            return np.full(128, next(distances) / np.sqrt(128))

    cfg = ConvertConfig(identity_every=2)
    assert cfg.max_distance == 0.4 and HOLD_MARGIN == 0.1
    chooser = TargetChooser(np.zeros(128), cfg, Enc)
    rgb = np.full((H, W, 3), 120, np.uint8)
    lm = helpers.mean_face_68((W / 2, H / 2), 0.4 * H)
    x0, y0 = lm.min(axis=0)
    x1, y1 = lm.max(axis=0)
    face = helpers.FakeFace((x0, y0, x1, y1), 0.9, lm, 0)
    assert chooser.choose(rgb, [face]) is not None  # 0.35: the target
    assert chooser.choose(rgb, [face]) is not None  # cached
    assert chooser.choose(rgb, [face]) is not None  # periodic re-check 0.45: held
    chooser.reset()
    assert chooser.choose(rgb, [face]) is None  # 0.45 for a track seen afresh: not the target


def test_identity_and_cut_options_are_checked():
    for bad in ({"identity_every": 0}, {"max_distance": 0.0}, {"cut_threshold": 0.0}, {"cut_threshold": 1.5}):
        with pytest.raises(BadInput):
            ConvertConfig(**bad)
    assert ConvertConfig(cut_threshold=None).cut_threshold is None


def test_two_faces_crossing_are_checked_again_when_they_part():
    """Two people walk past each other: while their boxes overlap, track ids may follow the
    wrong face; when they part, both are checked again."""
    from facedub.convert.target import TargetChooser

    class Enc:
        calls = 0

        def descriptor(self, rgb, lm68):
            Enc.calls += 1
            return np.zeros(128)

    chooser = TargetChooser(np.zeros(128), ConvertConfig(identity_every=1000), Enc)
    rgb = np.full((H, W, 3), 120, np.uint8)

    def face(cx, track):
        lm = helpers.mean_face_68((cx, H / 2), 0.3 * H)
        x0, y0 = lm.min(axis=0)
        x1, y1 = lm.max(axis=0)
        return helpers.FakeFace((x0, y0, x1, y1), 0.9, lm, track)

    # Positions step by 4 px (no jump); the faces overlap from about 40-88 px apart.
    path = [(30 + 4 * k, 98 - 4 * k) for k in range(18)]
    overlapping = []
    for a, b in path:
        chooser.choose(rgb, [face(a, 0), face(b, 1)])
        fa, fb = face(a, 0), face(b, 1)
        overlapping.append(bool(min(fa.bbox[2], fb.bbox[2]) > max(fa.bbox[0], fb.bbox[0])))
    assert overlapping[0] is False and any(overlapping)
    parted = [k for k in range(1, len(path)) if overlapping[k - 1] and not overlapping[k]]
    assert parted  # they overlapped and parted again
    # Checked when first seen (2) and again, both, when they parted (2 more); the whole way
    # otherwise from the cache.
    assert Enc.calls == 2 + 2 * len(parted)


def test_on_paste_hook_gives_the_exact_paste_alpha_and_changes_nothing(video, tmp_path, monkeypatch):
    """The hook sees every frame in order with the alpha the blend used: pixels with alpha 0
    are the plate's, the rest come from the face; the written video is the same with or without it."""
    import facedub.safety.provenance as prov

    monkeypatch.setattr(prov, "new_output_id", lambda: "00000000abcd")  # same watermark in both runs
    cfg = ConvertConfig(max_frames=12, visible_label=False)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    convert_video(video, helpers.InvertNet(), a, cfg, detector=helpers.FakeDetector((H, W), present=lambda i: i < 8))
    records = []
    convert_video(video, helpers.InvertNet(), b, cfg, detector=helpers.FakeDetector((H, W), present=lambda i: i < 8), on_paste=lambda r: records.append(
        (r.index, r.region, None if r.alpha is None else r.alpha.copy(), r.landmarks, r.plate.copy(), r.composite.copy())))
    assert [r[0] for r in records] == list(range(12))
    assert all(np.array_equal(x, y) for x, y in zip(_decode(a), _decode(b)))
    for index, region, alpha, lm, plate, comp in records:
        if index >= 8:  # no face: nothing pasted, nothing changed
            assert alpha is None and lm is None and np.array_equal(plate, comp)
            continue
        full = np.zeros(plate.shape[:2], np.float32)
        full[region.slices()] = alpha
        changed = np.any(plate != comp, axis=2)
        assert not changed[full == 0].any()
        inverted = full >= 0.99  # the stand-in inverts the face: full alpha changes every pixel
        assert inverted.sum() > 100 and changed[inverted].mean() > 0.95
        assert lm.shape == (68, 2)
