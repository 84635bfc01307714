"""Provenance on image sequences: the mark in float/16-bit pixels, header tags, manifests, verify."""

import json
from pathlib import Path

import numpy as np
import pytest

from facedub.cli import main
from facedub.media import sequence as seq
from facedub.safety import provenance as prov
from facedub.safety import sequence_marks as sm
from facedub.safety import watermark as wm
from facedub.safety.policy import OutputContext

OID = "0123456789ab"
H, W = 270, 480


def _ctx(label=False):
    return OutputContext(prov.output_info([], {}, {}, visible_label=label, output_id=OID))


def _plate(i=0, h=H, w=W):
    """A scene-linear plate: a smooth ramp with a little grain, different in every frame."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.03 + 0.5 * (xx / w)[..., None] * np.array([1.0, 0.8, 0.6]) + 0.1 * (yy / h)[..., None]
    return (base * (1 + 0.01 * i) + rng.normal(0, 0.002, (h, w, 3))).astype(np.float32)


def test_mark_levels_are_what_embed_adds():
    frame8 = seq.display8(seq.Colour(seq.ColourConfig(), "exr").to_view(_plate()))
    w = wm.Watermarker(OID)
    levels = sm.mark_levels(w, frame8, frame8, None)
    added = w.embed(frame8).astype(int) - frame8.astype(int)
    inside = (frame8 > 10) & (frame8 < 245)  # away from embed's uint8 clipping
    assert np.array_equal(np.repeat(levels[..., None], 3, 2)[inside], added[inside])
    assert set(np.unique(levels)) <= {-3.0, 3.0}  # a small frame's flat plate: ±3 levels


@pytest.mark.parametrize("pixel, tol", [("float", 5e-3), ("half", 0.1)])
def test_float_plate_differs_by_the_mark_alone(pixel, tol):
    """Seen through the display transform, output − plate is the mark's whole levels: within
    0.005 level for float32 (OpenColorIO's own CPU precision) and 0.1 level for half (its
    rounding of the result); where the mark is 0 the value is bit-identical."""
    col = seq.Colour(seq.ColourConfig(), "exr")
    plate = seq.from_unit(_plate(), pixel).astype(np.float32)  # as read from such a file
    view = col.to_view(plate)
    m = sm.mark_values(_ctx(), plate, view, seq.display8(view), col)
    out = seq.from_unit(m.values, pixel).astype(np.float32)  # as written
    diff = (col.to_view(out) - view) * 255.0
    assert np.abs(diff - m.levels[..., None]).max() <= tol
    assert np.abs(m.levels).max() >= 3
    zero = m.levels == 0
    assert np.array_equal(out[zero], plate[zero])


def test_16bit_plate_gets_257_code_values_per_level():
    col = seq.Colour(seq.ColourConfig(), "png")
    plate16 = seq.from_unit(np.clip(_plate(), 0, 1), "uint16")
    values = seq.to_unit(plate16)
    m = sm.mark_values(_ctx(), values, col.to_view(values), seq.display8(values), col)
    out16 = seq.from_unit(m.values, "uint16")
    expect = np.clip(plate16.astype(np.int64) + 257 * m.levels[..., None].astype(np.int64), 0, 65535)
    assert np.array_equal(out16.astype(np.int64), expect)


def test_label_stays_in_its_box():
    col = seq.Colour(seq.ColourConfig(), "exr")
    plate = _plate()
    view = col.to_view(plate)
    ctx = _ctx(label=True)
    with_label = sm.mark_values(ctx, plate, view, seq.display8(view), col).values
    without = sm.mark_values(_ctx(), plate, view, seq.display8(view), col).values
    ys, xs = ctx.labeler.box(H, W)
    changed = np.any(with_label != without, axis=2)
    assert changed[ys, xs].mean() > 0.5
    changed[ys, xs] = False
    # outside the box the mark's shaping may differ only where the label's texture reaches
    assert changed.mean() < 0.05


def test_job_output_id_is_stable_and_ignores_key_order():
    a = sm.job_output_id({"model": "m", "out": "o.%04d.exr", "settings": {"x": 1, "y": 2}})
    b = sm.job_output_id({"settings": {"y": 2, "x": 1}, "out": "o.%04d.exr", "model": "m"})
    c = sm.job_output_id({"model": "m", "out": "other.%04d.exr", "settings": {"x": 1, "y": 2}})
    assert a == b != c and len(a) == 12
    wm.parse_output_id(a)  # a valid watermark id


def _marked_sequence(folder: Path, pixel="half", n=6, first=1001):
    folder.mkdir(parents=True, exist_ok=True)
    col = seq.Colour(seq.ColourConfig(), "exr")
    ctx = _ctx()
    records = []
    for k in range(n):
        plate = _plate(k)
        view = col.to_view(plate)
        m = sm.mark_values(ctx, plate, view, seq.display8(view), col)
        path = folder / f"shot.{first + k:04d}.exr"
        seq.write_frame(path, m.values, pixel, sm.tags_for(ctx, col, "plate"))
        records.append(sm.file_record(path, "plate", first + k))
    sm.write_manifests(ctx, records, "shot", (first, first + n - 1), col, {"plates": "x"})
    return folder


def test_verify_sequence_folder_and_pattern(tmp_path):
    folder = _marked_sequence(tmp_path / "out")
    manifest = folder / "shot.1001-1006.facedub.json"
    body = json.loads(manifest.read_text())
    assert body["type"] == sm.MANIFEST_TYPE and body["output_id"] == OID and len(body["files"]) == 6
    assert body["files"][0]["path"] == "shot.1001.exr" and len(body["files"][0]["sha256"]) == 64
    for target in (folder, str(folder / "shot.%04d.exr"), str(folder / "shot.####.exr")):
        r = sm.verify_sequence(target)
        assert r.kind == "sequence" and r.marked and r.output_id == OID
        assert r.watermark.found and r.watermark.output_id == OID and r.watermark.frames == 6
        assert r.tags.output_id == OID and r.manifest.found and r.manifest.sha256_matches
    # a changed file no longer matches its manifest entry
    p = folder / "shot.1003.exr"
    p.write_bytes(p.read_bytes()[:-1] + b"\x00")
    assert not sm.verify_sequence(folder).manifest.sha256_matches


def test_verify_cli_on_sequences(tmp_path, capsys):
    folder = _marked_sequence(tmp_path / "out", pixel="float", n=4)
    assert main(["verify", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "facedub output (output id 0123456789ab)" in out and "watermark: found" in out
    assert main(["verify", str(folder / "shot.%04d.exr"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "sequence"
    plain = tmp_path / "plain"
    plain.mkdir()
    for k in range(3):
        seq.write_frame(plain / f"p.{k:04d}.png", seq.from_unit(np.clip(_plate(k), 0, 1), "uint16"), "uint16")
    assert main(["verify", str(plain)]) == 1
    assert "no facedub mark found" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["verify", str(empty)]) == 2
    assert "holds no numbered" in capsys.readouterr().err
