"""`facedub extract` / `facedub faceset show` in-process: bad inputs give one line and exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import write_test_video
from PIL import Image

from facedub.cli import main
from facedub.faceset import load_faceset


def _one_error_line(capsys: pytest.CaptureFixture[str], rc: int, name: str) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("facedub: error:") and name in lines[0], lines[0]
    return lines[0]


def _truncated_mp4(path: Path) -> Path:
    """A 'faststart' MP4 (index first) cut in half: the header promises frames that are gone."""
    import av

    full = path.with_name("full.mp4")
    with av.open(str(full), "w", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(40):
            for p in vs.encode(av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--quiet", "extract", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "fs")])
    assert "no such file" in _one_error_line(capsys, rc, "nope.mp4")


def test_text_file_named_mp4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fake.mp4").write_text("I am plain text, not a video.\n" * 10)
    rc = main(["--quiet", "extract", str(tmp_path / "fake.mp4"), "--out", str(tmp_path / "fs")])
    assert "cannot read it as a video or image" in _one_error_line(capsys, rc, "fake.mp4")


def test_truncated_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = _truncated_mp4(tmp_path / "cut.mp4")
    rc = main(["--quiet", "extract", str(v), "--out", str(tmp_path / "fs")])
    line = _one_error_line(capsys, rc, "cut.mp4")
    assert "truncated" in line


def test_video_without_faces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = write_test_video(tmp_path / "blank.mp4", frames=6, size=(96, 64))
    rc = main(["--quiet", "extract", str(v), "--out", str(tmp_path / "fs")])
    assert "no usable faces" in _one_error_line(capsys, rc, "blank.mp4")


def test_one_pixel_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.new("RGB", (1, 1), (200, 100, 50)).save(tmp_path / "dot.png")
    rc = main(["--quiet", "extract", str(tmp_path / "dot.png"), "--out", str(tmp_path / "fs")])
    assert "1x1" in _one_error_line(capsys, rc, "dot.png")


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.new("RGB", (64, 64)).save(tmp_path / "img.png")
    (tmp_path / "afile").write_text("x")
    rc = main(["--quiet", "extract", str(tmp_path / "img.png"), "--out", str(tmp_path / "afile" / "fs")])
    assert "cannot write" in _one_error_line(capsys, rc, "afile")
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            rc = main(["--quiet", "extract", str(tmp_path / "img.png"), "--out", str(ro / "fs")])
            assert "cannot write" in _one_error_line(capsys, rc, "ro")
        finally:
            ro.chmod(0o700)


def test_bad_option_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.new("RGB", (64, 64)).save(tmp_path / "img.png")
    rc = main(["--quiet", "extract", str(tmp_path / "img.png"), "--out", str(tmp_path / "fs"), "--every", "0"])
    assert "--every" in _one_error_line(capsys, rc, "--every")


@pytest.mark.shared
def test_rgba_and_16bit_png_work(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rgba = shared_data / "portraits" / "aiface7.png"
    assert Image.open(rgba).mode == "RGBA"
    assert main(["--quiet", "extract", str(rgba), "--out", str(tmp_path / "a")]) == 0
    assert len(load_faceset(tmp_path / "a").faces) == 1

    grey16 = (np.asarray(Image.open(shared_data / "portraits" / "aiface6.png").convert("L")).astype(np.uint16) * 257)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    assert main(["--quiet", "extract", str(tmp_path / "g16.png"), "--out", str(tmp_path / "b")]) == 0
    fs = load_faceset(tmp_path / "b")
    assert len(fs.faces) == 1
    crop = np.asarray(Image.open(tmp_path / "b" / fs.faces[0].file))
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    assert "faces:" in capsys.readouterr().out


@pytest.mark.shared
def test_bad_input_after_good_keeps_the_faceset(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fs"
    clip = shared_data / "grid" / "pwij3p.mpg"
    assert main(["--quiet", "extract", str(clip), "--out", str(out), "--every", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["faces_kept"] == 15 and summary["faces_total"] == 15
    cut = _truncated_mp4(tmp_path / "cut.mp4")
    rc = main(["--quiet", "extract", str(cut), "--out", str(out)])
    _one_error_line(capsys, rc, "cut.mp4")
    fs = load_faceset(out)
    assert len(fs.faces) == 15 and all((out / f.file).is_file() for f in fs.faces)


@pytest.mark.shared
def test_consent_is_bound_and_faceset_show(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        from facedub.safety.consent import create_consent, save_consent
    except ImportError:
        (tmp_path / "consent.json").write_text(json.dumps({"subject": "aiface1", "synthetic": True}))
    else:
        save_consent(create_consent("aiface1", "test", "facedub tests", synthetic=True), tmp_path / "consent.json")
    out = tmp_path / "fs"
    rc = main(["--quiet", "extract", str(shared_data / "synthetic" / "aiface1" / "speech_256.mp4"), "--out", str(out), "--every", "10", "--max-frames", "8", "--consent", str(tmp_path / "consent.json")])
    assert rc == 0, capsys.readouterr().err
    fs = load_faceset(out)
    assert fs.consent is not None and fs.consent["subject"] == "aiface1"
    capsys.readouterr()
    assert main(["faceset", "show", str(out), "--sheet", str(tmp_path / "sheet.png")]) == 0
    text = capsys.readouterr().out
    assert "8 faces" in text and "one person" in text and "sheet.png" in text
    assert Image.open(tmp_path / "sheet.png").size[0] > 0
    assert main(["faceset", "show", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["faces"] == 8 and Path(d["contact_sheet"]).is_file()
    # a bad consent file is a one-line error too
    (tmp_path / "bad.json").write_text("{nope")
    rc = main(["--quiet", "extract", str(shared_data / "synthetic" / "aiface1" / "speech_256.mp4"), "--out", str(tmp_path / "fs2"), "--consent", str(tmp_path / "bad.json")])
    _one_error_line(capsys, rc, "bad.json")
