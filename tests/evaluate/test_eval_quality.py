"""What a viewer sees: sharpness, the paste edge and the verdict, on inputs whose answer is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from facedub.evaluate import metrics as M
from facedub.evaluate.verdict import QualityBounds, Training, judge, judge_summary


def skin(h: int = 160, w: int = 160, seed: int = 0) -> np.ndarray:
    """A skin-coloured image with fine texture (pores, grain) at a few pixels' scale."""
    import cv2

    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.normal(0.0, 1.0, (h, w)).astype(np.float32), (0, 0), 1.2)
    tex = tex / tex.std() * 12.0
    base = np.array([196.0, 150.0, 128.0])
    return np.clip(base + tex[..., None] * np.array([1.0, 0.9, 0.85]), 0, 255).astype(np.uint8)


def disc(h: int = 160, w: int = 160, r: float = 50.0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= r * r


def lab_shift(rgb: np.ndarray, dl: float) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lab[..., 0] += dl
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def feathered(region: np.ndarray, px: float) -> np.ndarray:
    """A soft mask: 1 deep inside ``region``, ramping to 0 at its edge over ``px`` pixels."""
    import cv2

    d = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(d / px, 0.0, 1.0)


def paste(target: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return np.clip(face * a + target * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- sharpness


def test_sharpness_ratio_is_one_for_the_same_face_and_low_for_a_blur():
    import cv2

    tgt = skin()
    inner = disc(r=40)
    assert M.sharpness_ratio(tgt, tgt, inner) == pytest.approx(1.0)
    soft = cv2.GaussianBlur(tgt, (0, 0), 2.0)
    very_soft = cv2.GaussianBlur(tgt, (0, 0), 4.0)
    r2, r4 = M.sharpness_ratio(soft, tgt, inner), M.sharpness_ratio(very_soft, tgt, inner)
    assert r2 < 0.3 and r4 < r2  # more blur, less detail
    # a flat region has no detail to compare with
    flat = np.full_like(tgt, 128)
    assert math.isnan(M.sharpness_ratio(tgt, flat, inner))
    assert math.isnan(M.detail(tgt, np.zeros(inner.shape, bool)))


def test_watermark_grain_does_not_make_a_blur_look_sharp():
    """facedub's watermark adds pixel-level grain to every output frame; a blur must stay a blur."""
    import cv2

    from facedub.safety.watermark import embed

    tgt = skin(256, 256)
    inner = disc(256, 256, r=80)
    marked_blur = embed(cv2.GaussianBlur(tgt, (0, 0), 2.0), "0123456789ab")
    marked_same = embed(tgt, "0123456789ab")
    assert M.sharpness_ratio(marked_blur, tgt, inner) < 0.45
    assert 0.9 < M.sharpness_ratio(marked_same, tgt, inner) < 1.3


def test_inner_face_mask_covers_brows_to_mouth_not_the_jaw():
    from tests.evaluate.test_eval_metrics import face68

    lm = face68()
    m = M.inner_face_mask(lm, (512, 512))
    x, y = np.round(lm[30]).astype(int)  # nose tip
    assert m[y, x]
    jx, jy = np.round(lm[8]).astype(int)  # chin
    assert not m[jy, jx] or m.sum() < M.polygon_mask(lm, (512, 512)).sum()


# ------------------------------------------------------------------------------ paste edge


def test_seam_hard_colour_step_is_high_and_a_clean_paste_is_low():
    tgt = skin(seed=1)
    region = disc(r=50)  # the pasted face's outline
    inner, outer = (6.0, 18.0), (2.0, 14.0)
    assert M.seam_step(tgt, tgt, region, inner, outer) == pytest.approx(0.0, abs=1e-6)
    # hard-edged paste of the same skin 10 L* brighter: a step of about 10 ΔE all round
    hard = paste(tgt, lab_shift(tgt, 10.0), region.astype(np.float32))
    seam_hard = M.seam_step(hard, tgt, region, inner, outer)
    assert 8.0 < seam_hard < 12.0
    # clean paste: another person's skin (other texture) of the same colour, feathered in
    other = skin(seed=7)
    clean = paste(tgt, other, feathered(region, 5.0))
    seam_clean = M.seam_step(clean, tgt, region, inner, outer)
    assert seam_clean < 1.5
    # the step only on the left half still shows, at about half the strength
    yy, xx = np.mgrid[0:160, 0:160]
    half = paste(tgt, lab_shift(tgt, 10.0), (region & (xx < 80)).astype(np.float32))
    assert 3.0 < M.seam_step(half, tgt, region, inner, outer) < 7.0


def test_seam_ignores_the_targets_own_edges():
    """A dark background right outside the face is the frame's own edge, not a seam."""
    tgt = skin(seed=2)
    region = disc(r=50)
    tgt[~disc(r=52)] = (20, 30, 40)  # dark surround, 2 px outside the outline
    other = skin(seed=9)
    out = paste(tgt, other, feathered(region, 4.0))
    assert M.seam_step(out, tgt, region, (6.0, 18.0), (3.0, 15.0)) < 1.5


def test_seam_nan_without_a_region():
    img = skin()
    assert math.isnan(M.seam_step(img, img, np.zeros((160, 160), bool), (2.0, 4.0), (1.0, 3.0)))


def test_reads_as_source_uses_facedubs_stricter_same_person_distance():
    assert M.reads_as_source(0.45, 0.7)
    # within dlib's 0.6 but not facedub's 0.5: two different AI faces measure 0.53-0.57 apart
    assert not M.reads_as_source(0.55, 0.9)


# --------------------------------------------------------------------------------- verdict


GOOD = dict(identity=0.97, sharpness=0.85, expression=0.3, seam=1.2, jitter=1.0)


def test_verdict_usable_only_when_everything_is_within_bounds():
    v = judge(**GOOD)
    assert v.usable and v.text == "usable" and not v.reasons and not v.hints


def test_verdict_refuses_a_blur_even_when_identity_is_perfect():
    v = judge(**{**GOOD, "identity": 1.0, "sharpness": 0.25}, training=Training(minutes=15.0, steps=700, arch="lite"))
    assert not v.usable
    assert v.text.startswith("not yet usable: the face is blurred: 0.25×")
    assert len(v.reasons) == 1
    assert v.hints[0].startswith("train longer: --minutes 60 in total (the model has had 15 min, 700 steps")
    assert any("--sharpen" in h for h in v.hints) and any("--arch hd" in h for h in v.hints)


def test_verdict_reasons_and_hints_for_each_failure():
    v = judge(identity=0.4, sharpness=0.9, expression=0.8, seam=9.0, jitter=2.0, dist_target=0.05, training=Training(steps=300, by_steps=True))
    assert not v.usable and len(v.reasons) == 4
    text = v.text
    assert "40 %" in text and "0.80×" in text and "9.0 ΔE" in text and "2.00×" in text
    assert v.hints[0] == "train longer: --steps 600 in total (the model has 300 steps; the same command resumes)"
    assert any("still almost the target's own" in h for h in v.hints)
    assert any("--blend poisson" in h for h in v.hints) and any("--smooth" in h for h in v.hints)
    # a long training gets a proportional suggestion; no training info gives a general one
    assert "--minutes 200 in total" in judge(**{**GOOD, "expression": 0.7}, training=Training(minutes=100.0)).hints[0]
    assert "about twice" in judge(**{**GOOD, "identity": 0.5}).hints[0]


def test_verdict_unmeasured_figures():
    assert judge(**{**GOOD, "sharpness": None}).reasons == ("sharpness not measured",)
    assert judge(**{**GOOD, "identity": None}).usable is False
    assert judge(**{**GOOD, "seam": None, "jitter": None}).usable  # optional figures
    v = judge(**GOOD, faces=False)
    assert not v.usable and v.text.startswith("no verdict")
    strict = judge(**GOOD, bounds=QualityBounds(min_sharpness=0.9))
    assert not strict.usable and strict.bounds["min_sharpness"] == 0.9


def test_judge_summary_reads_the_json_summary():
    summary = {
        "frames_target_face": 10, "source_share": 1.0, "sharpness_ratio": 0.3, "expression_error_ratio": 0.4,
        "seam_delta_e": {"median": 2.0}, "landmark_jitter_ratio": 1.0, "dist_target_mean": 0.6,
    }
    v = judge_summary(summary)
    assert not v.usable and "blurred" in v.text
    assert judge_summary({**summary, "sharpness_ratio": 0.8}).usable


def test_swap_quality_lines_lead_with_the_verdict():
    from facedub.swap import quality_lines

    ev = {
        "frames_target_face": 10, "source_share": 0.98, "sharpness_ratio": 0.27, "expression_error_ratio": 0.58,
        "seam_delta_e": {"median": 3.1}, "landmark_jitter_ratio": 0.9, "background_psnr": {"mean": 36.6},
    }
    verdict = judge_summary(ev, training=Training(minutes=15.0, steps=700, arch="lite")).to_dict()
    lines = quality_lines(ev, verdict)
    assert lines[0].startswith("quality: not yet usable: the face is blurred")
    assert "98 %" in lines[1] and "sharpness 0.27×" in lines[1] and "3.1 ΔE" in lines[1] and "36.6 dB" in lines[1]
    assert lines[2].startswith("  next: train longer: --minutes 60")
    assert "98 % of frames read as the source" not in "\n".join(lines)  # the old, flattering line is gone


# ------------------------------------------------------------------------ end to end (JSON)


def test_json_has_the_new_keys(tmp_path, tools):
    from facedub.evaluate import EvalConfig, evaluate
    from facedub.evaluate.report import summary_rows

    fs = tools.faceset_with_descriptor(tmp_path / "fs")
    vid = tools.write_clip(tmp_path / "t.mp4", tools.gradient_frames(5))
    rep = evaluate(vid, vid, fs, EvalConfig())
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    s = d["summary"]
    for key in ("sharpness_ratio", "sharpness", "seam_delta_e", "expression_error_ratio", "source_share", "identity_threshold", "verdict"):
        assert key in s, key
    assert s["identity_threshold"] == 0.5
    assert set(s["verdict"]) >= {"usable", "text", "reasons", "hints", "bounds"}
    assert s["verdict"]["usable"] is False and s["verdict"]["text"].startswith("no verdict")  # no faces here
    assert {"sharpness_ratio", "seam_delta_e", "detail_output", "detail_target"} <= set(d["frames"][0])
    rows = summary_rows(rep)
    assert rows[0][0] == "verdict" and rows[0][1].startswith("no verdict")
    assert {"sharpness ratio", "expression ratio", "paste edge (seam)", "reads as source"} <= {k for k, _, _ in rows}


# ------------------------------------------------------------------- shared footage (aiface1)


@pytest.mark.shared
def test_a_blurred_face_on_real_footage_is_refused(eval_media, tmp_path):
    """aiface1's own clip with the face region blurred and feathered back in, as a soft model would."""
    import cv2

    from facedub.evaluate import EvalConfig, evaluate
    from facedub.faces.align import face_outline
    from facedub.faces.detect import FaceDetector

    from tests.evaluate.conftest import read_frames, write_clip

    frames = read_frames(eval_media["a1"], 20)
    out = []
    with FaceDetector(video_mode=False) as det:
        for f in frames:
            lm = det.detect(f)[0].landmarks68
            region = M.polygon_mask(face_outline(lm, 0.1), f.shape[:2])
            out.append(paste(f, cv2.GaussianBlur(f, (0, 0), 3.0), feathered(region, 20.0)))
    blurred = write_clip(tmp_path / "blur.mp4", out)
    html = tmp_path / "r.html"
    same = write_clip(tmp_path / "same.mp4", frames)
    ok = evaluate(same, same, eval_media["fs_a2"], EvalConfig(every=10)).summary
    assert ok.sharpness_ratio == pytest.approx(1.0) and ok.seam_delta_e["max"] == pytest.approx(0.0, abs=1e-6)
    s = evaluate(blurred, same, eval_media["fs_a2"], EvalConfig(every=10, report_html=str(html))).summary
    assert s.sharpness["count"] == 20
    assert s.sharpness_ratio < 0.35
    assert s.seam_delta_e["median"] < 2.0  # same colours: a soft face, not a seam
    assert not s.verdict["usable"] and "the face is blurred" in s.verdict["text"]
    text = html.read_text(encoding="utf-8")
    assert "the face is blurred" in text and "What to do next" in text
