"""evaluate() end to end: the metrics move the right way on real footage, and bad input is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from facedub.errors import BadInput, Cancelled
from facedub.evaluate import EvalConfig, evaluate
from facedub.evaluate.core import source_identity
from facedub.progress import NullReporter, RecordingReporter


def _json(report) -> dict:
    text = json.dumps(report.to_dict(), allow_nan=False)  # strictly JSON: no NaN / Infinity
    return json.loads(text)


# ------------------------------------------------------------------ shared footage (aiface1/2)


@pytest.mark.shared
def test_unmodified_video_scores_no_transfer_and_no_error(eval_media, tmp_path):
    html = tmp_path / "report.html"
    rep = evaluate(eval_media["a1"], eval_media["a1"], eval_media["fs_a2"], EvalConfig(report_html=str(html)))
    s = rep.summary
    assert s.frames_compared == 60 and s.frames_target_face == 60 and s.frames_output_face == 60
    assert s.identity_frames == 12  # every 5th of 60
    assert s.source_share == 0.0
    assert s.dist_target_mean == pytest.approx(0.0, abs=1e-6)
    assert s.expression_error["mean"] == pytest.approx(0.0, abs=1e-9)
    assert s.expression_error_static_mean == pytest.approx(0.0, abs=1e-9)
    assert s.expression_motion_mean > 0.005  # the target does move: the baseline is not degenerate
    assert s.pose_error["max"] < 1e-3
    assert s.landmark_jitter_ratio == pytest.approx(1.0)
    assert s.pixel_jitter_ratio == pytest.approx(1.0)
    assert s.background_psnr["min"] == 100.0
    d = _json(rep)
    assert len(d["frames"]) == 60 and d["summary"]["source_share"] == 0.0
    assert sum(f["identity_sampled"] for f in d["frames"]) == 12
    # the report is one self-contained file: inline images, no outside resources
    text = html.read_text(encoding="utf-8")
    assert len(re.findall(r'src="data:image/png;base64,', text)) >= 6 + 2 * 6
    assert not re.search(r'(src|href)="(https?:)?//', text)


@pytest.mark.shared
def test_reencoded_video_is_close_to_the_target(eval_media):
    s = evaluate(eval_media["a1_reencoded"], eval_media["a1"], eval_media["fs_a2"]).summary
    assert s.source_share == 0.0
    assert s.dist_target_mean < 0.15
    assert s.expression_error["mean"] < 0.01
    assert s.expression_error_ratio < 0.3
    assert s.pose_error["mean"] < 2.0
    assert 0.8 < s.landmark_jitter_ratio < 1.25
    assert 0.8 < s.pixel_jitter_ratio < 1.25
    assert s.background_psnr["mean"] > 32.0


@pytest.mark.shared
def test_the_two_identities_are_told_apart(eval_media):
    """aiface2 footage as the "output" for an aiface1 target, source faceset aiface2 (another clip)."""
    rep = evaluate(eval_media["a2"], eval_media["a1"], eval_media["fs_a2"], EvalConfig(every=4))
    s = rep.summary
    assert s.identity_frames == 15
    assert s.source_share >= 0.8
    assert s.dist_source_mean < s.dist_target_mean
    assert s.dist_source_mean < 0.4
    # and everything else says "this is not the target video"
    assert s.background_psnr["mean"] < 20.0
    assert s.pose_error["mean"] > 3.0


@pytest.mark.shared
def test_shuffled_frames_score_poor_expression_and_stability(eval_media):
    ok = evaluate(eval_media["a1_reencoded"], eval_media["a1"], eval_media["fs_a2"], EvalConfig(every=30)).summary
    bad = evaluate(eval_media["a1_shuffled"], eval_media["a1"], eval_media["fs_a2"], EvalConfig(every=30)).summary
    assert bad.expression_error["mean"] > 5 * ok.expression_error["mean"]
    assert bad.expression_error_ratio > 1.0  # worse than a face frozen in its resting expression
    assert bad.pose_error["mean"] > 2 * ok.pose_error["mean"]
    assert bad.landmark_jitter_ratio > 3.0
    assert bad.pixel_jitter_ratio > 2.0
    assert bad.source_share == 0.0  # still the target person


@pytest.mark.shared
def test_source_identity_computes_missing_descriptors_from_crops(eval_media, shared_data):
    from facedub.faces.detect import FaceDetector
    from facedub.faces.identity import IdentityEncoder
    from facedub.faceset import load_faceset
    from facedub.media.reader import open_media

    fs = load_faceset(eval_media["fs_a1"])
    assert fs.faces and all(f.descriptor is None for f in fs.faces)
    rec = RecordingReporter()
    mean, n = source_identity(eval_media["fs_a1"], 200, rec)
    assert n == len(fs.faces)
    assert ("source identity", n) in rec.phases
    enc = IdentityEncoder()
    with FaceDetector() as det:
        def desc(video: Path, index: int) -> np.ndarray:
            fr = next(open_media(video).frames(start=index, limit=1))
            return enc.descriptor(fr.rgb, det.detect(fr.rgb)[0].landmarks68)

        syn = shared_data / "synthetic"
        same = np.linalg.norm(desc(syn / "aiface1" / "speech_512.mp4", 400) - mean)
        other = np.linalg.norm(desc(syn / "aiface2" / "intro_512.mp4", 400) - mean)
    assert same < 0.35 < other
    # the cap on faces is honoured
    _, n2 = source_identity(eval_media["fs_a1"], 3, NullReporter())
    assert n2 == 3


# ------------------------------------------------------------ synthetic clips (no faces needed)


def test_frame_count_tolerance_and_mismatch(tmp_path, tools):
    fs = tools.faceset_with_descriptor(tmp_path / "fs")
    frames = tools.gradient_frames(12)
    tgt = tools.write_clip(tmp_path / "t.mp4", frames[:10])
    longer = tools.write_clip(tmp_path / "o11.mp4", frames[:11])
    rep = evaluate(longer, tgt, fs)
    assert rep.summary.frames_compared == 10
    assert rep.frames_output == 11 and rep.frames_target == 10
    assert any("1 frame(s) more" in n for n in rep.notes)
    assert rep.summary.frames_target_face == 0  # no faces: only the background is measured
    assert rep.summary.background_psnr["count"] == 10
    assert rep.summary.source_share is None and rep.summary.expression_error["mean"] is None
    _json(rep)
    far = tools.write_clip(tmp_path / "o5.mp4", frames[:5])
    with pytest.raises(BadInput, match=r"o5\.mp4: 5 frames but the target .*t\.mp4 has 10"):
        evaluate(far, tgt, fs)


def test_max_frames_and_psnr_of_a_changed_video(tmp_path, tools):
    fs = tools.faceset_with_descriptor(tmp_path / "fs")
    tgt = tools.write_clip(tmp_path / "t.mp4", tools.gradient_frames(10))
    other = tools.write_clip(tmp_path / "o.mp4", tools.gradient_frames(10, seed=90))
    same = evaluate(tgt, tgt, fs, EvalConfig(max_frames=4))
    assert same.summary.frames_compared == 4 and same.summary.background_psnr["min"] == 100.0
    assert any("first 4 frames" in n for n in same.notes)
    diff = evaluate(other, tgt, fs, EvalConfig(max_frames=4))
    assert diff.summary.background_psnr["max"] < 20.0


def test_bad_inputs_are_one_line_errors(tmp_path, tools):
    fs = tools.faceset_with_descriptor(tmp_path / "fs")
    vid = tools.write_clip(tmp_path / "t.mp4", tools.gradient_frames(4))
    small = tools.write_clip(tmp_path / "s.mp4", tools.gradient_frames(4, size=(32, 32)))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    img = tmp_path / "still.png"
    from facedub.fileio import write_png

    write_png(img, tools.gradient_frames(1)[0])
    empty_fs = tmp_path / "empty_fs"
    empty_fs.mkdir()
    cases = [
        ((tmp_path / "missing.mp4", vid, fs), r"missing\.mp4: no such file"),
        ((vid, tmp_path / "missing.mp4", fs), r"missing\.mp4: no such file"),
        ((vid, vid, tmp_path / "nofs"), r"nofs: no such faceset"),
        ((vid, vid, empty_fs), r"empty_fs: not a faceset"),
        ((text, vid, fs), r"notes\.mp4: "),  # wording is the reader's
        ((img, vid, fs), r"still\.png: is an image, not a video"),
        ((small, vid, fs), r"s\.mp4: frame size 32x32 differs from the target's 64x48"),
    ]
    for args, pattern in cases:
        with pytest.raises(BadInput, match=pattern) as e:
            evaluate(*args)
        assert "\n" not in str(e.value)
    with pytest.raises(BadInput, match="--every"):
        EvalConfig(every=0)


def test_cancel(tmp_path, tools):
    fs = tools.faceset_with_descriptor(tmp_path / "fs")
    vid = tools.write_clip(tmp_path / "t.mp4", tools.gradient_frames(4))
    rec = RecordingReporter()
    rec.stop_requested = True
    with pytest.raises(Cancelled):
        evaluate(vid, vid, fs, EvalConfig(), rec)


def test_mismatch_found_while_decoding_when_headers_give_no_count(tmp_path, tools, monkeypatch):
    import facedub.evaluate.core as core

    real = core._open_video

    def no_count(path, what):
        r = real(path, what)
        r.frame_count = 0  # as for a stream whose header has no frame count
        return r

    monkeypatch.setattr(core, "_open_video", no_count)
    fs = tools.faceset_with_descriptor(tmp_path / "fs")
    frames = tools.gradient_frames(14)
    tgt = tools.write_clip(tmp_path / "t.mp4", frames[:10])
    with pytest.raises(BadInput, match=r"o\.mp4: at least 14 frames but the target .*t\.mp4 has 10"):
        evaluate(tools.write_clip(tmp_path / "o.mp4", frames), tgt, fs)
    rep = evaluate(tgt, tools.write_clip(tmp_path / "t12.mp4", frames[:12]), fs)
    assert rep.summary.frames_compared == 10 and rep.frames_target == 12
    assert any("target has 2 frame(s) more" in n for n in rep.notes)


def test_visible_label_does_not_count_against_the_background(tmp_path):
    """Only the corner label differs: background PSNR stays at the cap."""
    from facedub.evaluate.core import EvalConfig, evaluate
    from facedub.safety.label import Labeler

    from tests.evaluate.conftest import faceset_with_descriptor, gradient_frames, write_clip

    frames = gradient_frames(6, size=(160, 120))
    target = write_clip(tmp_path / "t.mp4", frames, crf=0)
    labelled = write_clip(tmp_path / "o.mp4", [Labeler().apply(f) for f in frames], crf=0)
    fs = faceset_with_descriptor(tmp_path / "fs")
    same = evaluate(target, target, fs, EvalConfig())
    marked = evaluate(labelled, target, fs, EvalConfig())
    assert same.summary.background_psnr["mean"] == marked.summary.background_psnr["mean"] == 100.0
