"""``facedub convert`` through facedub.cli.main: bad inputs give one line and exit code 2."""

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import write_test_video

from facedub.cli import main

_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).parents[1] / "convert" / "tinymodel.py")
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_spec))
if not hasattr(helpers, "FakeDetector"):
    _spec.loader.exec_module(helpers)


def _sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A real (untrained) saved model: the CLI must accept the folder format."""
    folder = helpers.save_untrained_lite(tmp_path_factory.mktemp("m") / "model")
    return folder


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("facedub:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_help_lists_choices(capsys):
    with pytest.raises(SystemExit) as e:
        main(["convert", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("--preview", "--mask", "--erode", "--feather", "reinhard", "poisson", "--batch", "--frames"):
        assert word in out


def test_not_a_model_folder(tmp_path, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=5)
    (tmp_path / "notmodel").mkdir()
    rc = main(["convert", str(video), "--model", str(tmp_path / "notmodel"), "--out", str(tmp_path / "o.mp4")])
    assert rc == 2
    _one_line_error(capsys, "notmodel", "model")
    assert not (tmp_path / "o.mp4").exists()


def test_video_without_faces(tmp_path, tiny_model, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=6, size=(96, 64))
    before = _sha(video)
    rc = main(["--quiet", "convert", str(video), "--model", str(tiny_model), "--out", str(tmp_path / "o.mp4")])
    assert rc == 2
    _one_line_error(capsys, "in.mp4", "no face")
    assert not (tmp_path / "o.mp4").exists() and _sha(video) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # no temporary left


def test_output_in_missing_folder(tmp_path, tiny_model, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=3)
    rc = main(["convert", str(video), "--model", str(tiny_model), "--out", str(tmp_path / "no" / "o.mp4")])
    assert rc == 2
    _one_line_error(capsys, "does not exist")


def test_output_equal_to_input(tmp_path, tiny_model, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=3)
    before = _sha(video)
    rc = main(["convert", str(video), "--model", str(tiny_model), "--out", str(video)])
    assert rc == 2
    _one_line_error(capsys, "overwrite the input")
    assert _sha(video) == before


def test_corrupt_frame_mid_video(tmp_path, tiny_model, capsys):
    """Garbage in the middle of the video data: a clear one-line error or a warning — never a traceback."""
    video = write_test_video(tmp_path / "in.mp4", frames=40, size=(96, 64))
    data = bytearray(video.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid : mid + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    before = _sha(bad)
    rc = main(["--quiet", "convert", str(bad), "--model", str(tiny_model), "--out", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    # These frames hold no face, so a run that survives the damage must still stop with exit 2.
    assert rc == 2, err
    assert _sha(bad) == before and not (tmp_path / "o.mp4").exists()


def test_truncated_video(tmp_path, tiny_model, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=40, size=(96, 64))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    rc = main(["--quiet", "convert", str(cut), "--model", str(tiny_model), "--out", str(tmp_path / "o.mp4")])
    assert rc == 2
    _one_line_error(capsys, "cut.mp4")


@pytest.mark.shared
def test_preview_and_frames_on_shared_clip(shared_data, tiny_model, tmp_path, capsys):
    clip = shared_data / "synthetic" / "aiface1" / "speech_512.mp4"
    png = tmp_path / "p.png"
    rc = main(["--quiet", "convert", str(clip), "--model", str(tiny_model), "--out", str(png), "--preview", "10", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["face_found"] and png.is_file()
    out = tmp_path / "o.mp4"
    rc = main(["--quiet", "convert", str(clip), "--model", str(tiny_model), "--out", str(out), "--frames", "8", "--color", "hist", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["frames"] == 8 and s["swapped"] == 8 and s["audio"] and out.is_file()
    from facedub.model.precision import bf16_cpu_ok

    assert s["precision"] == ("bf16" if bf16_cpu_ok() else "fp32")  # auto: what this CPU does fast
    rc = main(["--quiet", "convert", str(clip), "--model", str(tiny_model), "--out", str(out), "--frames", "2", "--precision", "fp32"])
    assert rc == 0
    assert capsys.readouterr().out.strip().endswith("frames/s (model in fp32)")


@pytest.mark.shared
def test_preview_names_its_png_once(shared_data, tiny_model, tmp_path, capsys):
    clip = shared_data / "synthetic" / "aiface1" / "speech_512.mp4"
    png = tmp_path / "p.png"
    rc = main(["convert", str(clip), "--model", str(tiny_model), "--out", str(png), "--preview", "3"])
    assert rc == 0
    cap = capsys.readouterr()
    assert cap.out.strip() == f"preview of frame 3 written to {png}"
    assert str(png) not in cap.err  # the stderr reporter does not repeat it


def test_fp16_on_a_cpu_is_a_one_line_error(tmp_path, tiny_model, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "o.mp4"
    rc = main(["convert", str(video), "--model", str(tiny_model), "--out", str(out), "--precision", "fp16", "--device", "cpu"])
    assert rc == 2
    _one_line_error(capsys, "fp16 needs a CUDA device")
    assert not out.exists() and list(tmp_path.iterdir()) == [video]
