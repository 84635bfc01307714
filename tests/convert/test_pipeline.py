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
from facedub.convert.pipeline import crop_to_model_exact, model_input
from facedub.errors import BadInput, Cancelled
from facedub.faces.align import CROP_SIZE, crop_to_model, face_outline, warp
from facedub.progress import RecordingReporter

_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).with_name("tinymodel.py"))
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_spec))
if not hasattr(helpers, "FakeDetector"):
    _spec.loader.exec_module(helpers)

W, H = 128, 96


def _decode(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


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
    assert pair.shape == (H, 2 * W, 3)
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
    off = crop_to_model_exact(0.6875, 64)
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


def test_only_the_target_identity_is_swapped_and_descriptors_are_cached(video, tmp_path):
    model = helpers.InvertNet()
    model.meta = {**model.meta, "target_descriptor": [0.0] * 128}
    out = tmp_path / "o.mp4"
    _Encoder.calls = 0
    s = convert_video(video, model, out, ConvertConfig(identity_every=10, color="none"), detector=_TwoFaces(), identity=_Encoder)
    assert s.swapped == 30
    # Two tracks checked on frames 1, 11, 21: 6 descriptor calls, not 60.
    assert _Encoder.calls == 6
    fin, fout = _decode(video)[5], _decode(out)[5]
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

    from facedub.convert.pipeline import _Runner
    from facedub.model import build_model, default_config

    torch.manual_seed(0)
    cfg = default_config("lite", width=0.25, learned_mask=True)

    class Loaded:
        net = build_model("lite", cfg)
        config = cfg

    x = np.random.default_rng(0).integers(0, 256, (4, cfg.size, cfg.size, 3), dtype=np.uint8)
    fp32, bf16 = _Runner(Loaded, precision="fp32"), _Runner(Loaded, precision="bf16")
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
    from facedub.convert.pipeline import encoder_threads

    assert encoder_threads(512, 512) == 1
    assert encoder_threads(1280, 720) == 1
    assert encoder_threads(1920, 1080) == 0  # x264 decides: one thread would be the slowest stage


def test_decoder_threads_by_frame_size():
    from facedub.convert.pipeline import decoder_threads

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
