"""``facedub eval`` in-process: output formats, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facedub.cli import main


def _clip(path: Path, n: int, seed: int = 0, size: tuple[int, int] = (64, 48)) -> Path:
    from facedub.media.writer import VideoWriter

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    with VideoWriter(path, w, h, 25) as wr:
        for i in range(n):
            wr.write(np.stack([(xx * 4 + i * 8 + seed) % 256, (yy * 4) % 256, np.full_like(xx, (i * 20) % 256)], -1).astype(np.uint8))
    return path


def _faceset(folder: Path, descriptor: np.ndarray) -> Path:
    from facedub.faceset import FaceRecord, Faceset, save_faceset

    rec = FaceRecord(
        file="faces/x.png", source=0, frame=0, time=0.0, bbox=(0.0, 0.0, 1.0, 1.0),
        landmarks=tuple((float(i), float(i)) for i in range(68)), affine=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
        det_score=1.0, sharpness=1.0, descriptor=tuple(float(v) for v in descriptor),
    )
    folder.mkdir(parents=True, exist_ok=True)
    save_faceset(Faceset(id="cli-test", faces=(rec,)), folder)
    return folder


def test_json_and_text_output(tmp_path, capsys):
    fs = _faceset(tmp_path / "fs", np.zeros(128))
    vid = _clip(tmp_path / "t.mp4", 6)
    assert main(["--quiet", "eval", str(vid), "--target", str(vid), "--source", str(fs), "--json"]) == 0
    out = capsys.readouterr().out
    d = json.loads(out)  # one object on stdout
    assert d["summary"]["frames_compared"] == 6
    assert d["summary"]["background_psnr"]["min"] == 100.0
    assert len(d["frames"]) == 6
    report = tmp_path / "r.html"
    assert main(["--quiet", "eval", str(vid), "--target", str(vid), "--source", str(fs), "--report", str(report), "--every", "2"]) == 0
    text = capsys.readouterr().out
    assert "background PSNR" in text and "reads as source" in text and str(report) in text
    assert report.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_errors_exit_2_with_one_line(tmp_path, capsys):
    fs = _faceset(tmp_path / "fs", np.zeros(128))
    vid = _clip(tmp_path / "t.mp4", 10)
    short = _clip(tmp_path / "short.mp4", 4)
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"\x00" * 100)
    cases = [
        ([str(tmp_path / "none.mp4"), "--target", str(vid), "--source", str(fs)], "none.mp4: no such file"),
        ([str(bogus), "--target", str(vid), "--source", str(fs)], "bogus.mp4: "),  # wording is the reader's
        ([str(short), "--target", str(vid), "--source", str(fs)], "short.mp4: 4 frames but the target"),
        ([str(vid), "--target", str(vid), "--source", str(tmp_path)], "not a faceset"),
        ([str(vid), "--target", str(vid), "--source", str(fs), "--every", "0"], "--every 0: must be at least 1"),
    ]
    for argv, msg in cases:
        assert main(["--quiet", "eval", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    with pytest.raises(SystemExit) as e:  # usage error: --target missing
        main(["eval", str(vid), "--source", str(fs)])
    assert e.value.code == 2


@pytest.mark.shared
def test_real_footage_json(tmp_path, capsys, shared_data):
    """Unmodified aiface1 footage against a source of aiface2: 0 % transfer, ~0 expression error."""
    from facedub.faces.detect import FaceDetector
    from facedub.faces.identity import IdentityEncoder
    from facedub.media.reader import open_media
    from facedub.media.writer import VideoWriter

    syn = shared_data / "synthetic"
    fr = next(open_media(syn / "aiface2" / "english_512.mp4").frames(start=50, limit=1))
    with FaceDetector() as det:
        desc = IdentityEncoder().descriptor(fr.rgb, det.detect(fr.rgb)[0].landmarks68)
    fs = _faceset(tmp_path / "fs", desc)
    clip = tmp_path / "a1.mp4"
    with VideoWriter(clip, 512, 512, 25) as wr:
        for f in open_media(syn / "aiface1" / "speech_512.mp4").frames(limit=15):
            wr.write(f.rgb)
    assert main(["--quiet", "eval", str(clip), "--target", str(clip), "--source", str(fs), "--json", "--every", "5"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["frames_target_face"] == 15 and s["identity_frames"] == 3
    assert s["source_share"] == 0.0
    assert s["expression_error"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert s["landmark_jitter_ratio"] == pytest.approx(1.0)
