"""DPX frames: 8/10/16-bit round trips, facedub's tags in the user data, agreement with FFmpeg's
own DPX decoder and encoder (through PyAV), one-line refusals of what is not read."""

from pathlib import Path

import numpy as np
import pytest

from facedub.errors import BadInput
from facedub.media import dpx
from facedub.media import sequence as seq


def _codes(bits, h=20, w=23, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << bits, (h, w, c)).astype(np.uint8 if bits == 8 else np.uint16)


def _widen10(c):
    return (c << 6) | (c >> 4)


@pytest.mark.parametrize("pixel, bits", [("uint8", 8), ("uint10", 10), ("uint16", 16)])
def test_round_trip_is_exact_with_tags(tmp_path, pixel, bits):
    codes = _codes(bits)
    stored = _widen10(codes) if bits == 10 else codes
    p = tmp_path / "shot.1001.dpx"
    tags = {"facedub_output_id": "0123456789ab", "comment": "made with facedub", "software": "facedub test"}
    seq.write_frame(p, stored, pixel, tags)
    info = seq.frame_info(p)
    assert (info.width, info.height, info.pixel, info.alpha) == (23, 20, pixel, False)
    back = seq.read_frame(p, info)
    assert back.dtype == stored.dtype and np.array_equal(back, stored)
    assert seq.read_text_tags(p) == tags
    assert dpx.read_header(p).bits == bits
    # float code values in, the same file out (what convert's compositing hands the writer)
    q = tmp_path / "again.dpx"
    seq.write_frame(q, seq.to_unit(back), pixel, tags)
    assert q.read_bytes() == p.read_bytes()  # exact, and no time stamp in the header


def test_ten_bit_codes_survive_the_unit_scale():
    c = np.arange(1024, dtype=np.uint16)
    w = _widen10(c)
    assert w[0] == 0 and w[-1] == 65535
    assert np.array_equal(seq.from_unit(seq.to_unit(w), "uint10"), w)
    assert np.array_equal(dpx.to_codes(w, 10), c)


@pytest.mark.parametrize("bits, fmt", [(8, "rgb24"), (10, "rgb48le"), (16, "rgb48le")])
def test_ffmpeg_reads_what_facedub_writes(tmp_path, bits, fmt):
    av = pytest.importorskip("av")
    codes = _codes(bits, seed=bits)
    stored = _widen10(codes) if bits == 10 else codes
    p = tmp_path / "f.dpx"
    p.write_bytes(dpx.encode(stored, bits, {"facedub_output_id": "x"}))
    with av.open(str(p)) as c:
        frame = next(c.decode(video=0))
    assert np.array_equal(frame.to_ndarray(format=fmt), stored)  # FFmpeg widens 10 bits by bit replication too


@pytest.mark.parametrize("pix_fmt, pixel", [("gbrp10le", "uint10"), ("rgb48le", "uint16"), ("rgb48be", "uint16"), ("rgb24", "uint8")])
def test_facedub_reads_what_ffmpeg_writes(tmp_path, pix_fmt, pixel):
    av = pytest.importorskip("av")
    bits = {"uint8": 8, "uint10": 10, "uint16": 16}[pixel]
    codes = _codes(bits, h=18, w=21, seed=3)
    want = _widen10(codes) if bits == 10 else codes
    src = av.VideoFrame.from_ndarray(want, format="rgb48le" if bits > 8 else "rgb24")
    ctx = av.CodecContext.create("dpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 21, 18, pix_fmt
    ctx.time_base = __import__("fractions").Fraction(1, 24)
    frame = src.reformat(format=pix_fmt)
    data = b"".join(bytes(pk) for pk in list(ctx.encode(frame)) + list(ctx.encode(None)))
    p = tmp_path / "ff.dpx"
    p.write_bytes(data)
    info = seq.frame_info(p) if min(18, 21) >= seq.MIN_SIDE else None
    assert info is not None and info.pixel == pixel
    assert np.array_equal(seq.read_frame(p), want)


def test_rgba_plates_read_as_rgb_and_face_layers_write_rgba(tmp_path):
    codes = _codes(16, c=4, seed=5)
    p = tmp_path / "a.dpx"
    seq.write_frame(p, codes, "uint16")
    assert seq.frame_info(p).alpha
    assert np.array_equal(seq.read_frame(p), codes[..., :3])
    q = tmp_path / "b.dpx"
    seq.write_frame(q, _widen10(_codes(10, c=4)), "uint10")  # 10-bit RGBA goes out at 16 bits
    assert dpx.read_header(q).bits == 16 and dpx.read_header(q).channels == 4


def test_bad_dpx_is_one_line_naming_the_file(tmp_path):
    p = tmp_path / "shot.0001.dpx"
    p.write_bytes(b"not a dpx at all" * 200)
    with pytest.raises(BadInput, match=r"shot\.0001\.dpx: not a DPX file"):
        seq.frame_info(p)
    good = bytearray(dpx.encode(_codes(16), 16))
    good[800] = 100  # CbYCrY
    p.write_bytes(bytes(good))
    with pytest.raises(BadInput, match=r"shot\.0001\.dpx: DPX descriptor 100"):
        seq.frame_info(p)
    short = dpx.encode(_codes(16), 16)[:-100]
    p.write_bytes(short)
    with pytest.raises(BadInput, match=r"shot\.0001\.dpx: DPX is cut short"):
        seq.read_frame(p)


def test_a_dpx_sequence_scans_and_mixed_depths_are_refused(tmp_path):
    p = seq.parse_pattern(str(tmp_path / "shot.%04d.dpx"))
    for n in (1001, 1002, 1003):
        seq.write_frame(p.path(n), _widen10(_codes(10, seed=n)), "uint10")
    s = seq.scan_sequence(p)
    assert s.frames == (1001, 1002, 1003) and s.info.pixel == "uint10" and s.format == "dpx"
    seq.write_frame(p.path(1002), _codes(16, seed=9), "uint16")
    with pytest.raises(BadInput, match=r"shot\.1002\.dpx: is 23x20 16-bit, but frame 1001 is 23x20 10-bit"):
        seq.scan_sequence(p)
