"""``facedub convert`` on image sequences through facedub.cli.main: bad sequences and outputs
give one line naming the file, exit code 2, and leave nothing written."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from facedub.cli import main
from facedub.media import sequence as seq

_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).parents[1] / "convert" / "tinymodel.py")
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_spec))
if not hasattr(helpers, "FakeDetector"):
    _spec.loader.exec_module(helpers)

H, W = 48, 64


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = helpers.save_untrained_lite(tmp_path_factory.mktemp("m") / "model")
    return folder


def _plates(folder, ext="exr", frames=range(1001, 1007), pixel="half"):
    folder.mkdir(parents=True, exist_ok=True)
    p = seq.parse_pattern(str(folder / f"shot.%04d.{ext}"))
    yy, xx = np.mgrid[0:H, 0:W]
    for n in frames:
        img = (0.05 + 0.4 * (xx / W)[..., None] * np.array([1.0, 0.8, 0.6]) + 0.01 * n % 1).astype(np.float32)
        if ext == "exr":
            seq.write_frame(p.path(n), img, pixel)
        else:
            seq.write_frame(p.path(n), seq.from_unit(img, pixel), pixel)
    return p


def _error(capsys, *needles):
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("facedub:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _convert(plates, model, out, *extra):
    return main(["--quiet", "convert", plates if isinstance(plates, str) else plates.text, "--model", str(model), "--out", str(out), *extra])


def _nothing_written(tmp_path):
    for name in ("out", "matte", "face"):
        d = tmp_path / name
        assert not d.exists() or list(d.iterdir()) == [], sorted(d.iterdir())


def test_missing_frame_number(tmp_path, tiny_model, capsys):
    p = _plates(tmp_path / "plates")
    p.path(1003).unlink()
    rc = _convert(p, tiny_model, tmp_path / "out" / "shot.%04d.exr", "--frames", "1001-1006", "--matte-out", str(tmp_path / "matte" / "m.%04d.png"))
    assert rc == 2
    _error(capsys, "shot.1003.exr", "missing")
    _nothing_written(tmp_path)


def test_mixed_sizes_and_bit_depths(tmp_path, tiny_model, capsys):
    p = _plates(tmp_path / "a", ext="png", pixel="uint16")
    seq.write_frame(p.path(1004), np.zeros((H + 2, W, 3), np.uint16), "uint16")
    assert _convert(p, tiny_model, tmp_path / "out" / "shot.%04d.png") == 2
    _error(capsys, "shot.1004.png", f"{W}x{H + 2}")
    q = _plates(tmp_path / "b", ext="png", pixel="uint16")
    seq.write_frame(q.path(1005), np.zeros((H, W, 3), np.uint8), "uint8")
    assert _convert(q, tiny_model, tmp_path / "out" / "shot.%04d.png") == 2
    _error(capsys, "shot.1005.png", "8-bit")
    r = _plates(tmp_path / "c", ext="exr", pixel="half")
    seq.write_frame(r.path(1002), np.zeros((H, W, 3), np.float32), "float")
    assert _convert(r, tiny_model, tmp_path / "out" / "shot.%04d.exr") == 2
    _error(capsys, "shot.1002.exr", "float")
    _nothing_written(tmp_path)


def test_exr_without_rgb(tmp_path, tiny_model, capsys):
    import OpenEXR

    p = _plates(tmp_path / "plates")
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"Y": np.zeros((H, W), np.float16)}) as f:
        f.write(str(p.path(1006)))
    assert _convert(p, tiny_model, tmp_path / "out" / "shot.%04d.exr") == 2
    _error(capsys, "shot.1006.exr", "no R, G and B", "Y")
    _nothing_written(tmp_path)


@pytest.mark.parametrize("out", ["plates/shot.%04d.exr", "plates/shot.####.exr", "plates/shot.%d.exr"])
def test_output_over_the_plates(tmp_path, tiny_model, capsys, out):
    p = _plates(tmp_path / "plates")
    before = {f.name: f.read_bytes() for f in (tmp_path / "plates").iterdir()}
    assert _convert(p, tiny_model, tmp_path / out) == 2
    _error(capsys, "overwrite the input plates")
    assert {f.name: f.read_bytes() for f in (tmp_path / "plates").iterdir()} == before


@pytest.mark.parametrize("extra, needles", [
    (["--matte-out", "{t}/out/shot.%04d.exr"], ["--matte-out and --out name the same files"]),
    (["--frames", "990-1003"], ["shot.%04d.exr", "--frames 990-1003", "1001-1006"]),
    (["--frames", "1003-1001"], ["last frame comes before the first"]),
    (["--frames", "ten"], ["--frames ten"]),
    (["--face-out", "{t}/face/f.png"], ["--face-out is an image sequence"]),
    (["--preview", "1001"], ["--preview takes a video or an image"]),
])
def test_bad_options(tmp_path, tiny_model, capsys, extra, needles):
    p = _plates(tmp_path / "plates")
    extra = [e.replace("{t}", str(tmp_path)) for e in extra]
    assert _convert(p, tiny_model, tmp_path / "out" / "shot.%04d.exr", *extra) == 2
    _error(capsys, *needles)
    _nothing_written(tmp_path)


def test_float_plates_to_png_and_video_ranges(tmp_path, tiny_model, capsys):
    from tests.conftest import write_test_video

    p = _plates(tmp_path / "plates")
    assert _convert(p, tiny_model, tmp_path / "out" / "shot.%04d.png") == 2
    _error(capsys, "shot.%04d.png", "write --out as .exr")
    _nothing_written(tmp_path)
    video = write_test_video(tmp_path / "in.mp4", frames=3)
    assert _convert(str(video), tiny_model, tmp_path / "o.mp4", "--frames", "2-3") == 2  # indices from 0: past the end
    _error(capsys, "in.mp4", "--frames 2-3 asked, the video holds frames 0-2")
    assert not (tmp_path / "o.mp4").exists()
    assert _convert(str(video), tiny_model, tmp_path / "o" / "v.%04d.png", "--frames", "2-1") == 2
    _error(capsys, "--frames 2-1", "last frame comes before the first")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    assert _convert(str(video), tiny_model, tmp_path / "o.mp4", "--matte-out", str(tmp_path / "m.%04d.png")) == 2
    _error(capsys, "go with a sequence output")
    assert _convert(p, tiny_model, tmp_path / "one.png") == 2
    _error(capsys, "one.png", "the target is an image sequence", "out/shot.%04d.exr")


def test_a_frame_that_fails_mid_run_leaves_nothing(tmp_path, tiny_model, capsys):
    """A plate whose header is fine but whose pixels are cut off is found only when it is read:
    the frames already written are removed, no manifest is written."""
    p = _plates(tmp_path / "plates", ext="png", pixel="uint16", frames=range(1, 13))
    data = p.path(11).read_bytes()
    p.path(11).write_bytes(data[: len(data) // 2])
    rc = _convert(p, tiny_model, tmp_path / "out" / "shot.%04d.png", "--matte-out", str(tmp_path / "matte" / "m.%04d.png"), "--batch", "2")
    assert rc == 2
    _error(capsys, "shot.0011.png")
    _nothing_written(tmp_path)


def test_convert_a_sequence_then_verify_it(shared_data, tiny_model, tmp_path, capsys):
    """The command of the README on 16-bit PNG plates made from a shared clip (read in place):
    plate, matte and face-layer sequences for the asked range only, one JSON summary, and
    'facedub verify' on the output folder finds the watermark, the tags and the manifest of
    one output id."""
    import json

    from facedub.media.reader import open_media

    clip = shared_data / "synthetic" / "aiface1" / "speech_256.mp4"
    p = seq.parse_pattern(str(tmp_path / "plates" / "shot.%04d.png"))
    p.folder.mkdir()
    for k, f in enumerate(open_media(clip).frames(limit=16)):
        seq.write_frame(p.path(1001 + k), f.rgb.astype(np.uint16) * 257, "uint16")
    rc = main(["--quiet", "convert", p.text, "--model", str(tiny_model), "--out", str(tmp_path / "out" / "shot.%04d.png"),
               "--matte-out", str(tmp_path / "matte" / "shot.%04d.png"), "--face-out", str(tmp_path / "face" / "shot.%04d.png"),
               "--frames", "1003-1014", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "sequence" and s["frames"] == 12 and s["swapped"] >= 10
    for d in ("out", "matte", "face"):
        names = sorted(f.name for f in (tmp_path / d).glob("shot.*.png"))
        assert names == [f"shot.{n}.png" for n in range(1003, 1015)]
        assert (tmp_path / d / "shot.1003-1014.facedub.json").is_file()
    assert main(["verify", str(tmp_path / "out"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    oid = seq.read_text_tags(tmp_path / "out" / "shot.1003.png")["facedub_output_id"]
    assert r["output_id"] == oid and r["manifest"]["sha256_matches"]
    assert r["watermark"]["found"] and r["watermark"]["output_id"] == oid


def test_convert_a_dpx_sequence_then_verify_it(shared_data, tiny_model, tmp_path, capsys):
    """'facedub convert shot.%04d.dpx' on 10-bit DPX plates made from a shared clip: 10-bit DPX
    out, and 'facedub verify' on the folder finds the watermark, the tags and the manifest."""
    import json

    from facedub.media import dpx
    from facedub.media.reader import open_media

    clip = shared_data / "synthetic" / "aiface1" / "speech_256.mp4"
    p = seq.parse_pattern(str(tmp_path / "plates" / "shot.%04d.dpx"))
    p.folder.mkdir()
    for k, f in enumerate(open_media(clip).frames(limit=10)):
        seq.write_frame(p.path(1001 + k), seq.from_unit(f.rgb.astype(np.float32) / 255.0, "uint10"), "uint10")
    rc = main(["--quiet", "convert", p.text, "--model", str(tiny_model), "--out", str(tmp_path / "out" / "shot.%04d.dpx"), "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "sequence" and s["frames"] == 10 and s["swapped"] >= 8
    assert dpx.read_header(tmp_path / "out" / "shot.1001.dpx").bits == 10
    assert main(["verify", str(tmp_path / "out"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    oid = seq.read_text_tags(tmp_path / "out" / "shot.1001.dpx")["facedub_output_id"]
    assert r["output_id"] == oid and r["manifest"]["sha256_matches"]
    assert r["watermark"]["found"] and r["watermark"]["output_id"] == oid


def test_convert_a_video_to_a_prores_master(shared_data, tiny_model, tmp_path, capsys):
    """'facedub convert clip.mp4 --out master.mov --codec prores4444': a ProRes 4444 MOV that
    verify finds marked (watermark, tags, C2PA, manifest); --codec on an .mp4 is one line, exit 2."""
    import json

    import av

    clip = shared_data / "synthetic" / "aiface1" / "speech_256.mp4"
    mov = tmp_path / "master.mov"
    rc = main(["--quiet", "convert", str(clip), "--model", str(tiny_model), "--out", str(mov), "--codec", "prores4444", "--max-frames", "8", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "video" and s["frames"] == 8
    with av.open(str(mov)) as c:
        assert c.streams.video[0].codec_context.name == "prores"
    assert main(["verify", str(mov), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["watermark"]["found"] and r["c2pa"]["found"] and r["manifest"]["found"]
    assert main(["--quiet", "convert", str(clip), "--model", str(tiny_model), "--out", str(tmp_path / "m.mp4"), "--codec", "prores4444"]) == 2
    _error(capsys, "m.mp4", "name the output .mov")
    assert not (tmp_path / "m.mp4").exists()


def test_convert_a_video_to_an_ffv1_mkv(shared_data, tiny_model, tmp_path, capsys):
    """'facedub convert clip.mp4 --out master.mkv --codec ffv1': a lossless FFV1 Matroska file
    with the sound copied, that verify finds marked (watermark, tags, manifest; no C2PA, which
    Matroska has no binding for); ffv1 into a .mov is one line, exit 2."""
    import json

    import av

    clip = shared_data / "synthetic" / "aiface1" / "speech_256.mp4"
    mkv = tmp_path / "master.mkv"
    rc = main(["--quiet", "convert", str(clip), "--model", str(tiny_model), "--out", str(mkv), "--codec", "ffv1", "--max-frames", "8", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "video" and s["frames"] == 8
    with av.open(str(mkv)) as c, av.open(str(clip)) as src:
        assert c.streams.video[0].codec_context.name == "ffv1"
        assert len(c.streams.audio) == len(src.streams.audio) == 1  # the AAC copied into Matroska
    assert main(["verify", str(mkv), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["watermark"]["found"] and r["tags"]["found"] and r["manifest"]["sha256_matches"] and not r["c2pa"]["present"] and not r["altered"]
    assert main(["--quiet", "convert", str(clip), "--model", str(tiny_model), "--out", str(tmp_path / "m.mov"), "--codec", "ffv1"]) == 2
    _error(capsys, "m.mov", "name the output .mkv")
    assert not (tmp_path / "m.mov").exists()


def test_convert_a_range_of_a_video_into_a_sequence(shared_data, tiny_model, tmp_path, capsys):
    """'facedub convert clip.mp4 --out out/shot.%04d.png --frames 100-109' on a shared clip
    (read in place): files numbered by the video's frame index, just the range, one JSON
    summary; and '--frames 8' alone on a video is still the first 8 frames (with a note)."""
    import json

    clip = shared_data / "synthetic" / "aiface1" / "speech_256.mp4"
    rc = main(["--quiet", "convert", str(clip), "--model", str(tiny_model), "--out", str(tmp_path / "out" / "shot.%04d.png"),
               "--frames", "100-109", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "sequence" and s["frames"] == 10 and s["swapped"] >= 8
    assert sorted(f.name for f in (tmp_path / "out").glob("shot.*.png")) == [f"shot.{n:04d}.png" for n in range(100, 110)]
    assert len(list((tmp_path / "out").glob("*.facedub.json"))) == 1
    rc = main(["convert", str(clip), "--model", str(tiny_model), "--out", str(tmp_path / "o8.mp4"), "--frames", "8", "--json"])
    assert rc == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["frames"] == 8 and "--max-frames 8" in out.err
