from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedub.errors import BadInput
from facedub.media.reader import expand_inputs, load_image, open_media
from tests.conftest import write_test_video


def test_video_frames_indices_times_and_sampling(tmp_path: Path) -> None:
    v = write_test_video(tmp_path / "v.mp4", frames=12, size=(64, 48), fps=25)
    r = open_media(v)
    assert r.kind == "video" and (r.width, r.height) == (64, 48)
    assert r.fps == pytest.approx(25.0)
    assert r.frame_count == 12 and r.count_exact
    frames = list(r)
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].rgb.shape == (48, 64, 3) and frames[0].rgb.dtype == np.uint8
    assert frames[5].time == pytest.approx(5 / 25, abs=1e-3)
    assert [f.index for f in r.frames(start=3, every=4)] == [4, 8]
    assert [f.index for f in r.frames(every=2, limit=3)] == [0, 2, 4]


def test_single_threaded_decoding_gives_the_same_frames(tmp_path: Path) -> None:
    v = write_test_video(tmp_path / "v.mp4", frames=20, size=(96, 64), fps=25)
    r = open_media(v)
    auto = [(f.index, f.time, f.rgb) for f in r.frames()]
    one = [(f.index, f.time, f.rgb) for f in r.frames(threads=1)]
    assert len(one) == len(auto) == 20
    for (ia, ta, a), (i1, t1, b) in zip(auto, one):
        assert (ia, ta) == (i1, t1)
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="threads"):
        next(r.frames(threads=0))


def test_images_are_normalised_to_rgb8(tmp_path: Path) -> None:
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :15, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8
    assert tuple(img[5, 2]) == (200, 0, 0)
    assert tuple(img[5, 25]) == (255, 255, 255)  # transparency composited on white

    grey16 = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    g = load_image(tmp_path / "g16.png")
    assert g.shape == (20, 30, 3) and g.dtype == np.uint8
    assert g[-1, -1, 0] == round(grey16[-1, -1] / 65535 * 255)


def test_bad_inputs_raise_one_line_naming_the_file(tmp_path: Path) -> None:
    cases = {}
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    cases["text.mp4"] = "cannot read it"
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    cases["one.png"] = "too small"
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases["empty.mp4"] = "empty"
    cases["missing.mp4"] = "no such file"
    for name, words in cases.items():
        with pytest.raises(BadInput) as e:
            open_media(tmp_path / name)
        msg = str(e.value)
        assert name in msg and words in msg and "\n" not in msg


def test_truncated_video_is_reported_after_its_good_frames(tmp_path: Path) -> None:
    import av

    path = tmp_path / "fast.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(60):  # noise: every frame costs bytes, so a cut file loses frames
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    r = open_media(cut)
    got = []
    with pytest.raises(BadInput, match="truncated"):
        for f in r:
            got.append(f.index)
    assert 0 < len(got) < 60


def test_folders_expand_to_sorted_images(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    d.mkdir()
    for name in ("b.png", "a.jpg", "notes.txt"):
        if name.endswith("txt"):
            (d / name).write_text("x")
        else:
            Image.new("RGB", (32, 32), (10, 20, 30)).save(d / name)
    assert [p.name for p in expand_inputs([d])] == ["a.jpg", "b.png"]
    r = open_media(d)
    assert r.kind == "folder" and r.frame_count == 2
    assert [f.index for f in r] == [0, 1]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no images"):
        expand_inputs([tmp_path / "empty"])


@pytest.mark.parametrize("codec,suffix", [("libvpx", ".webm"), ("mpeg1video", ".mpg")])
def test_other_codecs_decode(tmp_path: Path, codec: str, suffix: str) -> None:
    import av

    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as c:
        vs = c.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            img = np.full((48, 64, 3), i * 20, np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    r = open_media(path)
    assert r.kind == "video"
    frames = list(r)
    assert len(frames) == 10 and frames[-1].rgb.shape == (48, 64, 3)
    assert abs(int(frames[-1].rgb.mean()) - 180) < 10


def _numbered_clip(path: Path, frames: int = 40, start_pts: int = 50, fps: int = 25) -> Path:
    """An H.264 MP4 with B-frames (bf=2, a keyframe every 12 frames) whose first PTS is not 0;
    frame i is a flat grey of level 20 + 5·i, so a decoded frame tells its own index."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"bf": "2", "g": "12", "keyint_min": "12", "sc_threshold": "0", "crf": "10"}
        s.codec_context.time_base = Fraction(1, fps)
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 + 5 * i, np.uint8), format="rgb24")
            f.pts = start_pts + i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _shown_index(rgb: np.ndarray) -> int:
    return int(round((float(rgb.mean()) - 20.0) / 5.0))


def test_frames_between_starts_at_the_exact_frame_after_a_seek(tmp_path: Path) -> None:
    """Seeking to the keyframe before a frame and decoding forward yields exactly the frames
    asked, by PTS: on a clip with B-frames and a first PTS of 2 s, every start lands on its
    frame (including ones just before and after a keyframe), and the indices match a full
    decode from the start."""
    import av

    clip = _numbered_clip(tmp_path / "b.mp4")
    with av.open(str(clip)) as c:
        st = c.streams.video[0]
        assert st.start_time and st.start_time > 0  # a non-zero start PTS
        assert st.codec_context.has_b_frames or any(p.pts != p.dts for p in c.demux(st) if p.pts is not None)  # reordered
    r = open_media(clip)
    assert len(r.frame_pts()) == 40
    whole = list(r.frames())
    assert [_shown_index(f.rgb) for f in whole] == list(range(40))
    for first in (0, 1, 11, 12, 13, 23, 24, 30, 39):
        got = list(r.frames_between(first, min(first + 4, 39)))
        assert got[0].index == first and _shown_index(got[0].rgb) == first
        assert [f.index for f in got] == list(range(first, min(first + 4, 39) + 1))
        assert [_shown_index(f.rgb) for f in got] == [f.index for f in got]
        assert got[0].time == pytest.approx(whole[first].time)
    with pytest.raises(BadInput, match="frame 40 asked, the video holds frames 0-39"):
        next(r.frames_between(40))


def test_a_written_plate_reads_back_at_its_own_levels(tmp_path: Path) -> None:
    """What facedub's writer encodes (BT.601, limited range, 4:2:0, lossless CRF 0) reads back
    without a colour shift: no channel moves by more than a fifth of a level on average.
    PyAV's default libswscale decode came out about a level low on every channel, so every
    pass through facedub darkened the plate."""
    from facedub.media.reader import open_media
    from facedub.media.writer import VideoWriter

    rng = np.random.default_rng(3)
    blocks = rng.integers(20, 236, size=(12, 16, 3), dtype=np.uint8)
    plate = np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1)  # 192×256, flat 16 px blocks: no chroma detail lost to 4:2:0
    path = tmp_path / "plate.mp4"
    with VideoWriter(path, plate.shape[1], plate.shape[0], 25, crf=0) as w:
        for _ in range(3):
            w.write(plate)
    frames = [f.rgb for f in open_media(path).frames()]
    assert len(frames) == 3
    diff = frames[1].astype(np.float64) - plate
    assert np.abs(diff.mean(axis=(0, 1))).max() < 0.2, diff.mean(axis=(0, 1))
    assert np.abs(diff).mean() < 0.8
