"""Policy (consent checks, marking, finalize), provenance (tags, manifest, C2PA) and verify."""

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest
from tests.safety.conftest import decode_all, encode_h264, jpeg, textured_frames

from facedub.errors import BadInput, ConsentMissing
from facedub.safety import consent as cm
from facedub.safety import policy, provenance as prov
from facedub.safety.label import Labeler, render_label
from facedub.safety.verify import verify_file

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def _rec(expires=None):
    return cm.create_consent("aiface", "facedub tests", "tests", expires=expires, synthetic=True, now=NOW).to_dict()


def _meta(expires=None):
    c = policy.require_consent_for_training({"id": "fsA", "consent": _rec()}, {"id": "fsB", "consent": _rec(expires)}, now=NOW)
    return {"id": "model-1", "faceset_ids": ["fsA", "fsB"], "consent": c}


def test_training_needs_both_records(tmp_path):
    with pytest.raises(ConsentMissing, match="target faceset has no consent"):
        policy.require_consent_for_training({"id": "a", "consent": _rec()}, {"id": "b", "consent": None}, now=NOW)
    bad = dict(_rec(), scope="changed")
    with pytest.raises(ConsentMissing, match="does not match"):
        policy.require_consent_for_training({"id": "a", "consent": bad}, {"id": "b", "consent": _rec()}, now=NOW)
    # a faceset folder works too
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "faceset.json").write_text(json.dumps({"id": "x", "consent": _rec()}))
    out = policy.require_consent_for_training(fs, fs, now=NOW)
    assert set(out) == {"source", "target"} and out["source"]["id"]


def test_convert_rechecks_expiry():
    meta = _meta(expires="2030-02-01")
    policy.require_consent_for_convert(meta, now=NOW)
    with pytest.raises(ConsentMissing, match="expired"):
        policy.require_consent_for_convert(meta, now=dt.datetime(2030, 3, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(ConsentMissing, match="no consent records"):
        policy.require_consent_for_convert({"id": "m"}, now=NOW)


def test_consent_for_faceset(tmp_path):
    rec = cm.create_consent("a", "a", "s", expires="2031-01-01", synthetic=True, now=NOW)
    cm.save_consent(rec, tmp_path / "c.json")
    assert policy.consent_for_faceset(tmp_path / "c.json", now=NOW)["id"] == rec.id
    with pytest.raises(ConsentMissing, match="expired"):
        policy.consent_for_faceset(tmp_path / "c.json", now=dt.datetime(2032, 1, 1, tzinfo=dt.timezone.utc))


def test_label_is_drawn_in_corner():
    f = np.full((240, 320, 3), 128, np.uint8)
    out = Labeler().apply(f)
    rgb, alpha = render_label(240, 320)
    assert rgb.shape[0] > 8 and rgb.shape[1] > 40
    changed = np.argwhere(np.any(out != f, axis=2))
    assert changed[:, 0].min() > 240 // 2 and changed[:, 1].min() > 320 // 2  # bottom-right only
    assert (out > 200).any() and (out < 100).any()  # white text on a dark box


def _write_output(tmp_path: Path, visible_label: bool = True, n: int = 20):
    ctx = policy.OutputContext(prov.output_info([], _meta(), {"crf": 18}, visible_label))
    frames = [policy.mark_frame(f, ctx) for f in textured_frames(n, (256, 256), seed=9)]
    tmp = tmp_path / ".out.part.mp4"
    encode_h264(frames, tmp)
    final = tmp_path / "out.mp4"
    mp = policy.finalize_output(tmp, ctx, final)
    os.replace(tmp, final)
    return ctx, final, mp


def test_finalize_then_verify_every_signal(tmp_path):
    ctx, out, mp = _write_output(tmp_path)
    assert mp == Path(str(out) + ".facedub.json")
    man = json.loads(mp.read_text())
    assert man["output_id"] == ctx.output_id and man["model_id"] == "model-1"
    assert man["faceset_ids"] == ["fsA", "fsB"] and len(man["consent_ids"]) == 2
    assert man["ai_generated"] and man["tool"] == "facedub"
    r = verify_file(out)
    assert r.marked and r.output_id == ctx.output_id
    assert r.watermark.found and r.watermark.output_id == ctx.output_id
    assert r.tags.found and r.tags.output_id == ctx.output_id
    assert r.manifest.found and r.manifest.sha256_matches
    assert r.c2pa.found and r.c2pa.ai_generated and r.c2pa.output_id == ctx.output_id
    assert r.c2pa.validation_state in ("Valid", "Trusted")
    # the local CA was created under FACEDUB_HOME, not the user's real config
    assert (Path(os.environ["FACEDUB_HOME"]) / "c2pa" / "signer.pem").is_file()


def test_metadata_stripping_leaves_the_watermark(tmp_path):
    ctx, out, _ = _write_output(tmp_path)
    frames = decode_all(out)
    stripped = tmp_path / "stripped.mp4"  # re-encoded from pixels: no tags, no C2PA, no manifest
    encode_h264(frames, stripped, crf=23)
    r = verify_file(stripped)
    assert not r.tags.found and not r.c2pa.present and not r.manifest.present
    assert r.watermark.found and r.output_id == ctx.output_id and r.marked


def test_finalize_refuses_unmarked_output(tmp_path):
    ctx = policy.OutputContext(prov.output_info([], _meta()))
    p = tmp_path / "x.mp4"
    encode_h264(textured_frames(3, (64, 64)), p)
    with pytest.raises(RuntimeError, match="never watermarked"):
        policy.finalize_output(p, ctx)


def test_png_output_and_jpeg_copy(tmp_path):
    from PIL import Image

    ctx = policy.OutputContext(prov.output_info([], _meta(), visible_label=False))
    img = policy.mark_frame(textured_frames(1, (384, 256), seed=4)[0], ctx)
    p = tmp_path / "preview.png"
    Image.fromarray(img).save(p)
    policy.finalize_output(p, ctx)
    r = verify_file(p)
    assert r.watermark.found and r.tags.found and r.c2pa.found and r.manifest.found
    q = tmp_path / "copy.jpg"
    Image.fromarray(jpeg(np.asarray(Image.open(p).convert("RGB")))).save(q, quality=95)
    r2 = verify_file(q)
    assert r2.watermark.output_id == ctx.output_id and not r2.c2pa.present


def test_user_signing_credentials(tmp_path, monkeypatch):
    prov.create_local_ca(tmp_path / "mine")
    monkeypatch.setenv("FACEDUB_C2PA_CERT", str(tmp_path / "mine" / "signer.pem"))
    monkeypatch.setenv("FACEDUB_C2PA_KEY", str(tmp_path / "mine" / "signer.key"))
    creds = prov.signing_credentials()
    assert "mine" in creds.source
    monkeypatch.setenv("FACEDUB_C2PA_KEY", str(tmp_path / "missing.key"))
    with pytest.raises(BadInput, match="missing.key"):
        prov.signing_credentials()


def test_verify_unmarked_and_bad_input(tmp_path):
    p = tmp_path / "plain.mp4"
    encode_h264(textured_frames(10, (256, 256), seed=2), p)
    r = verify_file(p)
    assert not r.marked and not r.watermark.found
    with pytest.raises(BadInput):
        verify_file(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"junk")
    with pytest.raises(BadInput):
        verify_file(tmp_path / "junk.mp4")


def test_pristine_clip_verifies_as_pristine_not_as_a_swap(tmp_path):
    ctx = policy.begin_pristine(tmp_path / "real.mp4", ("c1", "c2"), {"crf": 18})
    assert ctx.labeler is None and ctx.info.pristine
    out = tmp_path / "real.mp4"
    encode_h264([policy.mark_frame(f, ctx) for f in textured_frames(12, (256, 256))], out)
    mp = policy.finalize_output(out, ctx)
    man = json.loads(mp.read_text())
    assert man["kind"] == "pristine" and man["ai_generated"] is False and man["c2pa"] is False
    r = verify_file(out)
    assert r.marked and r.pristine and r.output_id == ctx.output_id
    assert r.watermark.found and r.watermark.pristine
    assert r.tags.tags.get(prov.TAG_KIND) == "pristine" and not r.c2pa.present
    assert "pristine facedub dataset clip" in r.summary_lines()[0]
    # stripped of every tag: the pixels alone still say pristine
    stripped = tmp_path / "stripped.mp4"
    encode_h264(decode_all(out), stripped, crf=23)
    r2 = verify_file(stripped)
    assert not r2.tags.found and r2.watermark.found and r2.pristine
    # a swap is never read as pristine
    ctx2, swap, _ = _write_output(tmp_path)
    r3 = verify_file(swap)
    assert r3.marked and not r3.pristine and not r3.watermark.pristine
    with pytest.raises(ConsentMissing):
        policy.begin_pristine(out, ())
