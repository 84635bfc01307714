"""End to end on the shared synthetic clip with a briefly trained tiny model and the real detector."""

import hashlib
import importlib.util
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from facedub.convert import ConvertConfig, convert_preview, convert_video
from facedub.convert.mask import erode, hull_mask
from facedub.faces.align import face_outline
from facedub.media.reader import open_media
from facedub.media.writer import VideoWriter

_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).with_name("tinymodel.py"))
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_spec))
if not hasattr(helpers, "FakeDetector"):
    _spec.loader.exec_module(helpers)

pytestmark = [pytest.mark.shared, pytest.mark.slow]
N = 50


@pytest.fixture(scope="module")
def clip(shared_data):
    return shared_data.joinpath(*helpers.CLIP)


@pytest.fixture(scope="module")
def tiny_model(clip, tmp_path_factory):
    return helpers.train_tiny_model(tmp_path_factory.mktemp("model") / "m", clip, steps=12)


def _frames(path, n=None):
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if n is not None and len(out) >= n:
                break
        return out


def _audio(path):
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        return [(bytes(p), float(p.pts * p.time_base)) for p in c.demux(s) if p.size]


def test_convert_50_frames_keeps_format_audio_and_background(clip, tiny_model, tmp_path):
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    out = tmp_path / "out.mp4"
    cfg = ConvertConfig(max_frames=N)
    s = convert_video(clip, tiny_model, out, cfg)
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == sha  # input untouched
    assert s.frames == N and s.swapped >= N - 2 and s.audio
    with av.open(str(out)) as c, av.open(str(clip)) as ci:
        v, vi = c.streams.video[0], ci.streams.video[0]
        assert (v.codec_context.name, v.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert v.average_rate == vi.average_rate
        assert (v.codec_context.width, v.codec_context.height) == (vi.codec_context.width, vi.codec_context.height)
        assert len(c.streams.audio) == 1
    out_frames = _frames(out)
    assert len(out_frames) == N
    # Audio: the input's packets over the converted 2 s, byte for byte.
    a_in, a_out = _audio(clip), _audio(out)
    want = [p for p, t in a_in if t < N / 25 - 1e-6]
    assert [p for p, _ in a_out] == want

    # Pixels outside the face: compare with the input carrying the same marks (visible label and
    # the invisible watermark of this output id, which every output frame gets) re-encoded by the
    # same writer at the same CRF and preset, so both carry the same codec noise. The face region
    # is the face outline (landmarks and forehead) grown by 16 px (feathered edge, and H.264 blocks that straddle it).
    from facedub.safety.label import Labeler
    from facedub.safety.provenance import TAG_ID, read_tags
    from facedub.safety.watermark import Watermarker

    marker, label = Watermarker(read_tags(out)[TAG_ID]), Labeler()
    ref = tmp_path / "ref.mp4"
    in_frames = _frames(clip, N)
    with VideoWriter(ref, in_frames[0].shape[1], in_frames[0].shape[0], 25, crf=cfg.crf, preset=cfg.preset) as w:
        for f in in_frames:
            w.write(marker.embed(label.apply(f)))
    ref_frames = _frames(ref)
    from facedub.faces.detect import FaceDetector

    inside_diffs, outside_diffs, noise = [], [], []
    with FaceDetector(video_mode=True) as det:
        for fin, fout, fref in zip(in_frames, out_frames, ref_frames):
            faces = det.detect(fin)
            assert faces
            hull = hull_mask(face_outline(faces[0].landmarks68, cfg.forehead), fin.shape[:2])
            face_zone = erode(hull, -16) > 0.5
            d = np.abs(fout.astype(int) - fref.astype(int)).max(axis=2)
            outside_diffs.append(d[~face_zone])
            noise.append(np.abs(fin.astype(int) - fref.astype(int)).max(axis=2)[~face_zone])
            inside_diffs.append(d[erode(hull, 8) > 0.5].mean())
    outside = np.concatenate(outside_diffs)
    codec_noise = np.concatenate(noise).mean()  # what one H.264 generation changes there
    # Two encodes of frames that differ only inside the face differ outside it by less than one
    # encode differs from its input (x264 decisions shift a little; nothing is pasted there).
    assert outside.mean() < codec_noise, (outside.mean(), codec_noise)
    assert np.mean(outside > 16) < 0.002
    # Inside the face, the swap changed things.
    assert np.mean(inside_diffs) > 3


def test_preview_on_shared_clip(clip, tiny_model, tmp_path):
    out = tmp_path / "p.png"
    res = convert_preview(clip, tiny_model, 120, out, ConvertConfig())
    assert res.face_found
    from PIL import Image

    pair = np.asarray(Image.open(out))
    assert pair.shape == (512, 1536, 3)  # before | after | mask
    frame = next(iter(open_media(clip).frames(start=120, limit=1))).rgb
    # "before" is the frame, carrying only the invisible watermark (a few grey levels) ...
    diff = np.abs(pair[:, :512].astype(int) - frame.astype(int))
    assert diff.max() <= 6
    # ... which verify finds in the preview PNG.
    from facedub.safety.verify import verify_file

    assert verify_file(out).watermark.found
