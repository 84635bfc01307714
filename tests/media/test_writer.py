from fractions import Fraction

import av
import numpy as np
import pytest
from tests.conftest import write_test_video

from facedub.errors import BadInput
from facedub.media.writer import VideoWriter, yuv420p_frame


def _frames(n, w=64, h=48):
    yy, xx = np.mgrid[0:h, 0:w]
    return [np.stack([(xx * 3 + i * 5) % 256, (yy * 5) % 256, np.full_like(xx, 40 * (i % 6))], -1).astype(np.uint8) for i in range(n)]


def _audio_packets(path):
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def _video_info(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return s.average_rate, s.codec_context.width, s.codec_context.height, s.codec_context.name, s.codec_context.pix_fmt, n


def test_writes_h264_with_same_size_rate_and_count(tmp_path):
    out = tmp_path / "o.mp4"
    with VideoWriter(out, 64, 48, 25) as w:
        for f in _frames(12):
            w.write(f)
    rate, width, height, codec, pix, n = _video_info(out)
    assert (rate, width, height, codec, pix, n) == (25, 64, 48, "h264", "yuv420p", 12)
    assert _audio_packets(out) is None
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]  # no temporary left behind


def test_colours_survive_the_round_trip(tmp_path):
    """Smooth colour fields written at CRF 0 read back (through libswscale) within a few levels:
    the RGB → yuv420p conversion uses the decoder's matrix and range, not another."""
    yy, xx = np.mgrid[0:48, 0:64]
    frames = [np.stack([xx * 3 + 20, yy * 4 + 30, np.full_like(xx, 60 + 40 * i)], -1).astype(np.uint8) for i in range(3)]
    out = tmp_path / "c.mp4"
    with VideoWriter(out, 64, 48, 25, crf=0) as w:
        for f in frames:
            w.write(f)
    with av.open(str(out)) as c:
        back = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    for a, b in zip(frames, back):
        d = np.abs(a.astype(int) - b.astype(int))
        assert d.mean() < 2.0 and d.max() <= 8  # chroma subsampling of a steep gradient
    # libswscale's conversion: the same luma (matrix and range), and on smooth content the same
    # chroma (the two subsampling filters differ on fine colour detail).
    import cv2

    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (0, 0), 4)  # gentle colour changes
    ours = yuv420p_frame(rgb).to_ndarray().astype(int)
    theirs = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray().astype(int)
    assert ours.shape == theirs.shape == (72, 64)
    assert np.abs(ours[:48] - theirs[:48]).max() <= 1 and np.abs(ours[48:] - theirs[48:]).mean() < 1.0


def test_fractional_rate(tmp_path):
    out = tmp_path / "o.mp4"
    with VideoWriter(out, 64, 48, 30000 / 1001) as w:
        for f in _frames(5):
            w.write(f)
    assert _video_info(out)[0] == Fraction(30000, 1001)


def test_audio_packets_copied_unchanged(tmp_path):
    src = write_test_video(tmp_path / "in.mp4", frames=40, size=(64, 48), fps=25, audio=True)
    out = tmp_path / "o.mp4"
    with VideoWriter(out, 64, 48, 25, audio_from=src) as w:
        for f in _frames(40):
            w.write(f)
    a_in, a_out = _audio_packets(src), _audio_packets(out)
    assert a_in and a_out == a_in
    with av.open(str(src)) as ci, av.open(str(out)) as co:
        si, so = ci.streams.audio[0], co.streams.audio[0]
        assert (so.codec_context.name, so.sample_rate, so.channels) == (si.codec_context.name, si.sample_rate, si.channels)


def test_audio_duration_limits_copied_packets(tmp_path):
    src = write_test_video(tmp_path / "in.mp4", frames=50, size=(64, 48), fps=25, audio=True)
    out = tmp_path / "o.mp4"
    with VideoWriter(out, 64, 48, 25, audio_from=src, audio_duration=1.0) as w:
        for f in _frames(25):
            w.write(f)
    a_in, a_out = _audio_packets(src), _audio_packets(out)
    assert 0 < len(a_out) < len(a_in)
    assert a_out == a_in[: len(a_out)]  # a prefix, byte-identical
    assert abs(len(a_out) * 1024 / 44100 - 1.0) < 0.05


def test_error_removes_temporary_and_never_creates_output(tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 64, 48, 25) as w:
            w.write(_frames(1)[0])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_survives_an_aborted_write(tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    w = VideoWriter(out, 64, 48, 25)
    w.write(_frames(1)[0])
    w.abort()
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]


def test_bad_arguments(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "o.mp4", 64, 48, 25)
    with pytest.raises(BadInput, match="0x48"):
        VideoWriter(tmp_path / "o.mp4", 0, 48, 25)
    with pytest.raises(BadInput, match="extension"):
        VideoWriter(tmp_path / "o.avi", 64, 48, 25)
    w = VideoWriter(tmp_path / "o.mp4", 64, 48, 25)
    with pytest.raises(ValueError):
        w.write(np.zeros((10, 10, 3), np.uint8))
    w.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("threads", [0, 1])
def test_encoder_thread_count_is_set_and_output_the_same_shape(tmp_path, threads):
    out = tmp_path / "o.mp4"
    with VideoWriter(out, 64, 48, 25, threads=threads) as w:
        assert w._video.thread_count == threads
        for f in _frames(6):
            w.write(f)
    assert _video_info(out)[5] == 6
    with pytest.raises(ValueError, match="threads"):
        VideoWriter(tmp_path / "p.mp4", 64, 48, 25, threads=-1)
    assert not (tmp_path / "p.mp4").exists()
