"""Robustness suite (issue 17), short versions: clips built by ``bench/robustness.py`` from the
shared media, converted with a tiny stand-in model, checked against ground truth.

Asserted here: what does not depend on how well the model is trained — who gets swapped
(only the target; bystanders, other people and empty frames untouched), cut handling (pickup
in a new shot, nothing of the previous shot after a cut), and that small, filling and
partly visible faces convert without error. Identity transfer and jitter need a trained
model: the benchmark (``python bench/robustness.py --model MODEL``) measures them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

_tm_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).with_name("tinymodel.py"))
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_tm_spec))
if not hasattr(helpers, "FakeDetector"):
    _tm_spec.loader.exec_module(helpers)

_rb_spec = importlib.util.spec_from_file_location("bench_robustness", REPO / "bench" / "robustness.py")
rb = sys.modules.setdefault("bench_robustness", importlib.util.module_from_spec(_rb_spec))
if not hasattr(rb, "generate"):
    _rb_spec.loader.exec_module(rb)

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def _mean_descriptor(video: Path, frames: int = 4) -> list[float]:
    from facedub.faces.detect import FaceDetector
    from facedub.faces.identity import IdentityEncoder
    from facedub.media.reader import open_media

    enc, ds = IdentityEncoder(), []
    with FaceDetector() as det:
        for f in open_media(video).frames(every=15, limit=frames):
            faces = det.detect(f.rgb)
            if faces:
                ds.append(enc.descriptor(f.rgb, faces[0].landmarks68))
    return np.mean(ds, axis=0).tolist()


@pytest.fixture(scope="module")
def tiny_model(shared_data):
    """A stand-in model whose decoder inverts the face (tinymodel.InvertNet), carrying aiface1
    as the person to replace and aiface2 as the source, as training writes them into model.json.

    Whether a face was swapped is read from pixels (inner-face PSNR, output vs input). A tiny
    model trained to reconstruct the target's own face gives a swap close to the input once the
    colour transfer has run (inner PSNR 24–31 dB seen, near the 30 dB line), so the "who got
    swapped" checks would flicker; an inverted face is unmistakable (≈10–18 dB), and every
    other step of convert (detection, identity, cuts, smoothing, masks, colour) runs as usual."""
    syn = shared_data / "synthetic"
    model = helpers.InvertNet(size=64)
    model.meta["target_descriptor"] = _mean_descriptor(syn / "aiface1" / "speech_512.mp4")
    model.meta["source_descriptor"] = _mean_descriptor(syn / "aiface2" / "intro_512.mp4")
    return model


@pytest.fixture(scope="module")
def work(shared_data, tmp_path_factory):
    return tmp_path_factory.mktemp("robustness")


def _run(case: str, work: Path, model) -> dict:
    from facedub.convert import ConvertConfig, convert_video

    inp = rb.generate(case, work, short=True, target="aiface1")
    out = inp.with_name("output.mp4")
    s = convert_video(inp, model, out, ConvertConfig())
    truth = json.loads(inp.with_name("truth.json").read_text())
    assert s.frames == len(truth["frames"])
    res = rb.check(case, inp, out, truth)
    res["summary"] = s
    return res


def _cond(res: dict, start: str) -> dict:
    found = [c for c in res["conditions"] if c["name"].startswith(start)]
    assert len(found) == 1, f"{start!r} in {[c['name'] for c in res['conditions']]}"
    return found[0]


def _met(res: dict, start: str) -> None:
    c = _cond(res, start)
    assert c["met"] is True, f"{res['case']}: {c['name']}: {c['value']} (goal {c['goal']}); {c['detail']}"


# ----------------------------------------------------------------------------- the generator


def test_ground_truth_follows_the_transform(shared_data, work):
    """The truth's landmarks are where the detector finds the face in the generated frames
    (roll, zoom and pan applied), within a small share of the inter-ocular distance; a wrong
    transform of the points (sign of the roll, scale about the wrong centre) would be off by
    far more."""
    from facedub.faces.detect import FaceDetector
    from facedub.media.reader import open_media

    inp = rb.generate("motion", work, short=True)
    truth = json.loads(inp.with_name("truth.json").read_text())
    errs = []
    with FaceDetector() as det:
        for f in open_media(inp).frames(every=5):
            gt = np.asarray(truth["frames"][f.index]["faces"][0]["lm"])
            faces = det.detect(f.rgb)
            assert faces, f"no face detected in generated frame {f.index}"
            lm = faces[0].landmarks68
            errs.append(np.linalg.norm(lm[17:] - gt[17:], axis=1).mean() / rb._iod(gt))
    # The truth is exact by construction; the detector is not (up to ~0.1 inter-ocular at 30° roll,
    # and on one or two of the 40 frames near the steepest roll it misfits the face by 0.2–0.3,
    # however the clip was decoded). A wrong transform would put every rolled frame far off.
    assert np.median(errs) < 0.05 and sorted(errs)[-2] < 0.15, errs
    cams = [fr["camera"] for fr in truth["frames"]]
    assert max(abs(c["roll"]) for c in cams) > 25 and min(c["zoom"] for c in cams) < 0.65
    assert max(abs(c["pan_x"]) for c in cams) > 0.1 * truth["width"]


def test_checker_reports_a_missing_swap_and_an_untouched_bystander(shared_data, work):
    """The input checked against itself: nothing swapped, nothing else touched."""
    inp = rb.generate("people", work / "self", short=True)
    res = rb.check("people", inp, inp)
    assert _cond(res, "bystander's face untouched")["met"] is True
    assert _cond(res, "bystander's face untouched")["value"] == 100.0  # identical pixels
    assert _cond(res, "target swapped")["met"] is False
    assert _cond(res, "target found again")["met"] is False
    assert res["ok"] is False


def test_light_gains_ramp_exposure_then_white_balance():
    g = [rb.light_gains(i, 20) for i in range(20)]
    assert g[0] == (0.5, 0.5, 0.5) and g[9] == pytest.approx((1.4, 1.4, 1.4))
    assert g[10][0] > 1.2 and g[10][2] < 0.8 and g[19][0] < 0.8 and g[19][2] > 1.2
    lut = rb.exposure_lut((0.5, 1.0, 1.4))
    assert lut[128, 0] < 128 == lut[128, 1] < lut[128, 2] and lut[255, 2] == 255


# ----------------------------------------------------------------------------- the cases


def test_people_only_the_target_is_swapped(tiny_model, work):
    res = _run("people", work, tiny_model)
    _met(res, "bystander's face untouched")
    _met(res, "target swapped")
    _met(res, "target found again after the swap of places")
    _met(res, "nothing pasted elsewhere")


def test_cuts_other_people_and_empty_shots_untouched(tiny_model, work):
    res = _run("cuts", work, tiny_model)
    _met(res, "other people's shots untouched")
    _met(res, "empty shots untouched")
    _met(res, "target picked up in the first frames")
    _met(res, "target swapped within its shots")
    _met(res, "nothing of the previous shot after a cut")


def test_camera_motion_keeps_the_swap(tiny_model, work):
    res = _run("motion", work, tiny_model)
    _met(res, "frames without a swap")
    _met(res, "nothing pasted elsewhere")


@pytest.mark.parametrize("case", ["small", "large", "partial"])
def test_small_large_and_partial_faces_convert(tiny_model, work, case):
    res = _run(case, work, tiny_model)
    assert len(res["frames"]) == res["summary"].frames
    if case != "large":  # a face filling the frame leaves no "elsewhere"
        _met(res, "nothing pasted elsewhere")
    if case == "large":
        _met(res, "frames without a swap")


def test_changing_light_converts(tiny_model, work):
    res = _run("light", work, tiny_model)
    _met(res, "frames without a swap")
    # Measured on every swapped frame (the ≤ 3 goal needs a real face: the benchmark judges it).
    for phase in ("exposure", "white balance"):
        c = _cond(res, f"inner face colour follows the frame ({phase})")
        assert c["value"] is not None and "10 swapped frames" in c["detail"], c
