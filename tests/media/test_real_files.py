"""Files cameras and phones make, read by open_media and carried through convert_video.

Each input is built by tests/media/gen.py (PyAV, tiny). Convert runs with the fake detector
and the inverting stand-in model of the convert tests, so no shared media is needed.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from facedub.convert import ConvertConfig, convert_video
from facedub.errors import BadInput
from facedub.media.reader import Orientation, frame_rgb, open_media, orientation_from_matrix
from tests.media import gen

_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).parents[1] / "convert" / "tinymodel.py")
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_spec))
if not hasattr(helpers, "FakeDetector"):
    _spec.loader.exec_module(helpers)


def _convert(src: Path, out: Path, **cfg):
    r = open_media(src)
    det = helpers.FakeDetector((r.height, r.width))
    return convert_video(src, helpers.InvertNet(), out, ConvertConfig(color="none", **cfg), detector=det)


def _raw(path: Path):
    """Stored frames (no rotation, no deinterlacing) and their rotation as PyAV reports it."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return [frame_rgb(f) for f in frames], [f.rotation for f in frames]


def _outside_face(rgb: np.ndarray) -> np.ndarray:
    """The top sixth of the picture (markers), well away from the fake detector's centred face."""
    return rgb[: max(2, rgb.shape[0] // 6)]


# -- rotation ---------------------------------------------------------------------------------
def test_orientation_from_display_matrices():
    one = 65536
    assert orientation_from_matrix(None).identity
    assert orientation_from_matrix((one, 0, 0, 0, one, 0, 0, 0, 1 << 30)).identity
    cw = orientation_from_matrix((0, one, 0, -one, 0, 0, 0, 0, 1 << 30))  # rotation -90: a phone held upright
    assert cw == Orientation(True, True, False) and cw.describe() == "rotated 90° clockwise"
    img = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(cw.apply(img), np.rot90(img, -1))
    ccw = orientation_from_matrix((0, -one, 0, one, 0, 0, 0, 0, 1 << 30))
    np.testing.assert_array_equal(ccw.apply(img), np.rot90(img, 1))
    half = orientation_from_matrix((-one, 0, 0, 0, -one, 0, 0, 0, 1 << 30))
    np.testing.assert_array_equal(half.apply(img), np.rot90(img, 2))
    mirror = orientation_from_matrix((-one, 0, 0, 0, one, 0, 0, 0, 1 << 30))
    np.testing.assert_array_equal(mirror.apply(img), img[:, ::-1])
    assert cw.shown_size(96, 64) == (64, 96) and half.shown_size(96, 64) == (96, 64)


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_rotated_phone_video_reads_upright(tmp_path, rotation):
    src = gen.write_video(tmp_path / "phone.mp4", frames=6, size=(64, 96), rotation=rotation)
    r = open_media(src)
    assert (r.width, r.height) == (64, 96)  # as players show it
    raw, rots = _raw(src)
    assert rots[0] == (rotation if rotation != 180 else -180)
    frames = list(r)
    assert len(frames) == 6
    for f, stored, rot in zip(frames, raw, rots):
        # What players show: the stored frame turned by PyAV's rotation (counter-clockwise degrees).
        np.testing.assert_array_equal(f.rgb, np.rot90(stored, round(rot / 90)))
        assert gen.markers(f.rgb) == "upright"
    assert "rotated" in " ".join(r.notes())


def test_mirrored_video_reads_as_shown(tmp_path):
    src = gen.write_video(tmp_path / "selfie.mp4", frames=3, size=(96, 64), hflip=True)
    r = open_media(src)
    raw, _ = _raw(src)
    np.testing.assert_array_equal(next(iter(r)).rgb, raw[0][:, ::-1])
    assert "mirrored left-right" in r.notes()[0]


def test_convert_rotated_phone_video_writes_it_upright(tmp_path):
    src = gen.write_video(tmp_path / "phone.mp4", frames=10, size=(64, 96), rotation=-90, audio=[("eng", 440)])
    out = tmp_path / "out.mp4"
    s = _convert(src, out)
    assert (s.width, s.height, s.frames) == (64, 96, 10)
    assert any("rotated 90° clockwise" in w for w in s.warnings)
    frames, rots = _raw(out)
    assert rots[0] == 0  # no display matrix: the pixels themselves are upright
    assert frames[0].shape == (96, 64, 3)
    assert all(gen.markers(f) == "upright" for f in frames)  # players show it as they show the input
    assert len(gen.packets(out, "audio")[0]) > 0


def test_preview_of_a_rotated_video_is_upright(tmp_path):
    from PIL import Image

    from facedub.convert import convert_preview

    src = gen.write_video(tmp_path / "phone.mp4", frames=6, size=(64, 96), rotation=-90)
    out = tmp_path / "p.png"
    convert_preview(src, helpers.InvertNet(), 3, out, ConvertConfig(color="none"), detector=helpers.FakeDetector((96, 64)))
    pair = np.asarray(Image.open(out).convert("RGB"))
    assert pair.shape[0] == 96 and pair.shape[1] % 64 == 0  # panels of the upright 64x96 frame
    assert gen.markers(pair[:, :64]) == "upright"


# -- variable frame rate -----------------------------------------------------------------
VFR_TIMES = [0.0, 0.04, 0.1, 0.3, 0.34, 0.6, 0.64, 0.7, 1.0, 1.2]


def test_variable_frame_rate_keeps_every_timestamp_and_the_audio(tmp_path):
    src = gen.write_video(tmp_path / "vfr.mp4", frames=len(VFR_TIMES), times=VFR_TIMES, audio=[("eng", 440)])
    assert [round(f.time, 3) for f in open_media(src)] == VFR_TIMES
    out = tmp_path / "out.mp4"
    s = _convert(src, out)
    assert s.frames == len(VFR_TIMES)
    assert gen.frame_times(out) == pytest.approx(VFR_TIMES, abs=1e-3)
    # Audio: the same packets at the same times, on the same clock as the video.
    assert gen.packets(out, "audio") == gen.packets(src, "audio")


def test_writer_keeps_given_times_and_spaces_untimed_frames(tmp_path):
    from facedub.media.writer import VideoWriter

    out = tmp_path / "t.mp4"
    with VideoWriter(out, 64, 48, 25, timed=True) as w:
        for t in VFR_TIMES:
            w.write(gen.picture(t * 25, 64, 48), time=t)
    assert gen.frame_times(out) == pytest.approx(VFR_TIMES, abs=1e-4)
    out2 = tmp_path / "u.mp4"
    with VideoWriter(out2, 64, 48, 25, timed=True) as w:
        for t in (0.0, 0.0, 0.01):  # a repeated timestamp: still strictly increasing
            w.write(gen.picture(0, 64, 48), time=t)
    with av.open(str(out2)) as c:
        pts = [f.pts for f in c.decode(video=0)]
    assert len(pts) == 3 and pts[0] < pts[1] < pts[2] == 900
    out3 = tmp_path / "v.mp4"
    with VideoWriter(out3, 64, 48, 25) as w:  # no times: 1/25 s apart
        for _ in range(3):
            w.write(gen.picture(0, 64, 48))
    assert gen.frame_times(out3) == [0.0, 0.04, 0.08]


# -- pixel formats ------------------------------------------------------------------------
@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv422p", "yuv422p10le"])
def test_ten_bit_and_422_input(tmp_path, pix_fmt):
    src = gen.write_video(tmp_path / f"{pix_fmt}.mp4", frames=8, pix_fmt=pix_fmt)
    ref = gen.write_video(tmp_path / "ref.mp4", frames=8)
    r = open_media(src)
    assert r.pix_fmt == pix_fmt
    got, want = [f.rgb for f in r], [f.rgb for f in open_media(ref)]
    assert len(got) == 8 and got[0].dtype == np.uint8
    assert np.abs(got[3].astype(int) - want[3].astype(int)).mean() < 4  # same picture, other sampling
    out = tmp_path / "out.mp4"
    s = _convert(src, out)
    assert s.frames == 8 and s.swapped == 8
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert gen.markers(_raw(out)[0][0]) == "upright"


# -- odd sizes ------------------------------------------------------------------------------
def test_odd_size_output_decodes_at_the_input_size(tmp_path):
    # libx264 cannot write 4:2:0 at an odd size: build the input in 4:4:4.
    src = gen.write_video(tmp_path / "odd.mp4", frames=6, size=(97, 65), pix_fmt="yuv444p")
    r = open_media(src)
    assert (r.width, r.height) == (97, 65)
    out = tmp_path / "out.mp4"
    s = _convert(src, out)
    assert s.frames == 6
    note = [w for w in s.warnings if "odd side" in w]
    assert note and "same 97x65" in note[0] and "4:4:4" in note[0]
    frames, _ = _raw(out)
    assert len(frames) == 6 and all(f.shape == (65, 97, 3) for f in frames)  # as PyAV decodes it
    assert (open_media(out).width, open_media(out).height) == (97, 65)
    src0 = next(iter(r)).rgb
    assert np.abs(frames[0][:10].astype(int) - src0[:10].astype(int)).mean() < 6  # the picture is where it was
    assert gen.markers(frames[0]) == "upright"


def test_output_says_its_colour_matrix(tmp_path):
    """HD phone video is BT.709: decoded with its own matrix, and the output is tagged BT.601
    (what the writer converts with), so players do not guess BT.709 for it and shift colours."""
    from facedub.media.writer import VideoWriter

    rgb = np.zeros((720, 1280, 3), np.uint8)
    rgb[:] = (200, 40, 40)
    with VideoWriter(tmp_path / "hd.mp4", 1280, 720, 25) as w:
        w.write(rgb)
    with av.open(str(tmp_path / "hd.mp4")) as c:
        f = next(c.decode(video=0))
        assert (int(f.colorspace), int(f.color_range)) == (6, 1)
        assert np.abs(f.to_ndarray(format="rgb24")[360, 640].astype(int) - (200, 40, 40)).max() <= 3


@pytest.mark.parametrize("size", [(641, 361), (641, 360), (640, 361)])
def test_writer_keeps_odd_sizes(tmp_path, size):
    """641x361 used to come out 642x362; now the stream and every decoded frame have the input's size."""
    from facedub.media.writer import VideoWriter

    w, h = size
    pics = [gen.picture(i, w, h) for i in range(3)]
    with VideoWriter(tmp_path / "o.mp4", w, h, 25) as wr:
        for p in pics:
            wr.write(p)
        assert f"same {w}x{h}" in wr.notes[0]
    with av.open(str(tmp_path / "o.mp4")) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.width, cc.height, cc.pix_fmt) == (w, h, "yuv444p")
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert [d.shape for d in decoded] == [(h, w, 3)] * 3
    for d, p in zip(decoded, pics):
        assert np.abs(d.astype(int) - p.astype(int)).mean() < 4  # colours right (BT.601 limited, as tagged)
    with VideoWriter(tmp_path / "even.mp4", 640, 360, 25) as wr:  # even sizes stay 4:2:0
        wr.write(gen.picture(0, 640, 360))
        assert not wr.notes
    with av.open(str(tmp_path / "even.mp4")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"


# -- interlaced ---------------------------------------------------------------------------
def test_interlaced_input_is_deinterlaced(tmp_path):
    src = gen.write_video(tmp_path / "tv.mp4", frames=12, size=(96, 64), interlaced=True)
    r = open_media(src)
    assert r.interlaced and r.field_order == "top field first"
    frames = list(r)
    raw, _ = _raw(src)
    assert len(frames) == len(raw) == 12
    assert [round(f.time, 3) for f in frames] == [round(i / 25, 3) for i in range(12)]
    before = np.mean([gen.combing(f) for f in raw[2:]])
    after = np.mean([gen.combing(f.rgb) for f in frames[2:]])
    assert after < 0.5 * before, (before, after)
    out = tmp_path / "out.mp4"
    s = _convert(src, out)
    assert s.frames == 12 and any("deinterlaced" in w for w in s.warnings)
    progressive = gen.write_video(tmp_path / "p.mp4", frames=3)
    assert not open_media(progressive).interlaced


# -- several audio streams and subtitles -----------------------------------------------------
def test_every_audio_stream_and_the_subtitles_are_kept(tmp_path):
    cues = [(0.1, 0.3, "hello"), (0.5, 0.7, "goodbye")]
    src = gen.write_video(tmp_path / "multi.mp4", frames=25, audio=[("eng", 440), ("fra", 660)], subtitles=cues)
    out = tmp_path / "out.mp4"
    s = _convert(src, out)
    assert s.frames == 25
    assert gen.stream_summary(out)[1:] == [("audio", "aac", "eng"), ("audio", "aac", "fra"), ("subtitle", "mov_text", "eng")]
    a_in = gen.packets(src, "audio")
    assert len(a_in) == 2 and all(len(a) > 10 for a in a_in) and a_in[0] != a_in[1]
    assert gen.packets(out, "audio") == a_in  # both streams, byte for byte, at the same times
    subs = gen.packets(out, "subtitle")[0]
    assert subs == gen.packets(src, "subtitle")[0]  # MP4 fills the gaps between cues with empty samples
    assert [t for t, data in subs if len(data) > 2] == [0.1, 0.5] and b"hello" in subs[1][1]


def test_subrip_subtitles_kept_in_mkv_and_reported_when_mp4_cannot_hold_them(tmp_path):
    from facedub.media.writer import VideoWriter

    src = gen.write_video(tmp_path / "multi.mkv", frames=10, audio=[("eng", 440)], subtitles=[(0.1, 0.2, "hi")])
    out_mkv = tmp_path / "out.mkv"
    # The writer alone (convert writes only the containers it can sign: MP4, MOV, M4V).
    with VideoWriter(out_mkv, 96, 64, 25, audio_from=src, timed=True) as w:
        for f in open_media(src):
            w.write(f.rgb, f.time)
        assert w.notes == []
    assert [k for k, _, _ in gen.stream_summary(out_mkv)] == ["video", "audio", "subtitle"]
    assert gen.packets(out_mkv, "subtitle") == gen.packets(src, "subtitle")
    out_mp4 = tmp_path / "out.mp4"
    s = _convert(src, out_mp4)
    assert [k for k, _, _ in gen.stream_summary(out_mp4)] == ["video", "audio"]
    assert any("subtitle stream 2" in w and "left out" in w for w in s.warnings)


def test_max_frames_limits_every_copied_stream(tmp_path):
    src = gen.write_video(tmp_path / "multi.mp4", frames=50, audio=[("eng", 440), ("fra", 660)], subtitles=[(0.2, 0.4, "a"), (1.5, 1.9, "b")])
    out = tmp_path / "out.mp4"
    _convert(src, out, max_frames=20)
    for stream in gen.packets(out, "audio"):
        assert stream and max(t for t, _ in stream) < 0.8
    assert [t for t, data in gen.packets(out, "subtitle")[0] if len(data) > 2] == [0.2]


# -- a corrupt packet ----------------------------------------------------------------------
def test_corrupt_packet_mid_file_is_skipped_and_reported(tmp_path):
    good = gen.write_video(tmp_path / "good.mp4", frames=30, gop=10, noise=True, audio=[("eng", 440)])
    bad = tmp_path / "bad.mp4"
    t = gen.corrupt_packet(good, bad, 15)
    assert t == pytest.approx(0.6)
    r = open_media(bad)
    frames = list(r)
    assert len(frames) == 29 and 0.6 not in [round(f.time, 3) for f in frames]
    assert len(r.problems) == 1 and "frame 15 at 0.60 s" in r.problems[0] and "bad.mp4" in r.problems[0]
    out = tmp_path / "out.mp4"
    s = _convert(bad, out)
    assert s.frames == 29 and s.swapped == 29
    assert any("frame 15 at 0.60 s could not be decoded" in w for w in s.warnings)
    times = gen.frame_times(out)
    assert len(times) == 29 and times[14] == pytest.approx(0.56) and times[15] == pytest.approx(0.64)


def test_unreadable_video_is_one_line_and_writes_nothing(tmp_path):
    good = gen.write_video(tmp_path / "good.mp4", frames=30, gop=10, noise=True)
    data = bytearray(good.read_bytes())
    for _, pos, size in gen.video_packets(good):  # every packet ruined: nothing decodes
        data[pos + 8 : pos + size] = bytes(size - 8)
    ruined = tmp_path / "ruined.mp4"
    ruined.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    with pytest.raises(BadInput) as e:
        _convert(ruined, out)
    msg = str(e.value)
    assert "ruined.mp4" in msg and "\n" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.mp4", "ruined.mp4"]


# -- extract on the same files (a real face needed: shared media) --------------------------------
def _grid_frames(shared_data: Path, n: int) -> list[np.ndarray]:
    return [f.rgb for f in open_media(shared_data / "grid" / "bbaf2n.mpg").frames(limit=n)]


@pytest.mark.shared
def test_extract_from_a_rotated_phone_video_finds_upright_faces(shared_data, tmp_path):
    from facedub.extract import ExtractConfig, extract_faceset
    from facedub.faceset import load_faceset

    pics = _grid_frames(shared_data, 12)
    h, w = pics[0].shape[:2]
    src = gen.write_video(tmp_path / "phone.mp4", frames=12, size=(w, h), rotation=-90, pictures=pics)
    raw, _ = _raw(src)
    assert raw[0].shape[:2] == (w, h)  # stored on its side
    s = extract_faceset([src], tmp_path / "fs", ExtractConfig(descriptor_every=50))
    assert s.faces_kept >= 11
    assert any("rotated 90° clockwise" in n for n in s.notes)
    fs = load_faceset(tmp_path / "fs")
    assert (fs.sources[0].width, fs.sources[0].height) == (w, h)
    # Upright faces: eyes above the mouth in the frame.
    lm = fs.faces[0].landmarks_array()
    assert lm[36:48, 1].mean() < lm[48:68, 1].mean() - 10


@pytest.mark.shared
def test_extract_goes_on_past_a_corrupt_packet_and_says_which_frame(shared_data, tmp_path):
    from facedub.extract import ExtractConfig, extract_faceset

    pics = _grid_frames(shared_data, 30)
    h, w = pics[0].shape[:2]
    good = gen.write_video(tmp_path / "good.mp4", frames=30, size=(w, h), gop=10, pictures=pics)
    bad = tmp_path / "bad.mp4"
    gen.corrupt_packet(good, bad, 15)
    s = extract_faceset([bad], tmp_path / "fs", ExtractConfig(descriptor_every=50))
    assert s.frames_read == 29 and s.faces_kept >= 27
    assert any("frame 15 at 0.60 s could not be decoded" in n for n in s.notes)


def test_cli_convert_of_an_unreadable_video_is_one_line_exit_2(tmp_path, capsys):
    from facedub.cli import main

    good = gen.write_video(tmp_path / "good.mp4", frames=30, gop=10, noise=True)
    data = bytearray(good.read_bytes())
    for _, pos, size in gen.video_packets(good):
        data[pos + 8 : pos + size] = bytes(size - 8)
    ruined = tmp_path / "ruined.mp4"
    ruined.write_bytes(bytes(data))
    model = helpers.save_untrained_lite(tmp_path / "model")
    code = main(["convert", str(ruined), "--model", str(model), "--out", str(tmp_path / "out.mp4")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("facedub:")]
    assert code == 2 and len(lines) == 1 and "ruined.mp4" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_output_container_that_cannot_carry_content_credentials_is_refused_up_front(tmp_path):
    from facedub.errors import BadInput

    src = gen.write_video(tmp_path / "in.mkv", frames=4, audio=[("eng", 440)])
    with pytest.raises(BadInput, match=r"out\.mkv.*\.mp4"):
        _convert(src, tmp_path / "out.mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]
